"""A reproducible, clearly labelled demo corpus, so a fresh machine has something to analyse.

``generate_demo_records(seed, posts)`` makes a few thousand synthetic Chinese social-media posts
and comments about several topics (``DEMO_TOPICS``) on weibo, douyin, bilibili, xhs, zhihu,
tieba, kuaishou and news sites. Everything is derived from the seed alone — no wall clock, no
``hash()`` — so the same seed gives identical records on any machine and a second import only
updates rows (``generate_demo_corpus`` goes through ``core.corpus.importers.import_records``).

What makes it useful for the engines:

* each topic has its own vocabulary (sub-themes, actors, speakers, reasons for and against,
  neutral facts) and its own stance mix, which shifts during its event burst;
* texts are filled from templates with clear positive / negative / neutral wording, so the
  offline sentiment classifier agrees with the intended stance most of the time (sentiment is
  left ``None``: the classifier fills it); the intended stance is kept in extras for evaluation;
* platform shapes: short posts with #话题# and [emoji] on Weibo, video titles and tags on
  Douyin / Kuaishou / Bilibili, notes on Xiaohongshu, question → answer on Zhihu, threads on
  Tieba, headline + lead on news sites;
* ~90 days of dates ending at a seed-derived day, with an event-day spike per topic;
* heavy-tailed engagement (log-normal with rare Pareto boosts), and comments under hot posts.

Labelling: ``source`` "demo", every URL on ``demo.shoal.invalid`` (a reserved, unresolvable
domain), authors named 演示用户NNNN or 演示… media names, post ids starting ``demo``, and the fields
``demo`` (true), ``demo_seed``, ``demo_topic``, ``demo_subtheme`` and ``demo_stance``, which the
importer keeps in the post's extras.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from core.corpus.documents import hotness
from core.text.dates import parse_time

DEMO_SOURCE = "demo"
DEMO_DOMAIN = "demo.shoal.invalid"
DEMO_URL_PREFIX = f"https://{DEMO_DOMAIN}/"
WINDOW_DAYS = 90
PLATFORMS = ("weibo", "douyin", "bilibili", "xhs", "zhihu", "tieba", "kuaishou", "news")
POST_LEN = (30, 200)
COMMENT_LEN = (6, 200)

_PLATFORM_WEIGHTS = {"weibo": 30, "douyin": 14, "bilibili": 10, "xhs": 11, "zhihu": 9, "tieba": 7,
                     "kuaishou": 8, "news": 11}
_PLATFORM_CODES = {"weibo": "wb", "douyin": "dy", "bilibili": "bili", "xhs": "xhs", "zhihu": "zh",
                   "tieba": "tb", "kuaishou": "ks", "news": "news"}
_STANCES = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class TopicSpec:
    """One demo topic: its words, its sub-themes and how people feel about it."""

    key: str
    name: str  # what the Home page offers as an example topic
    query: str  # the main search word: most of its posts contain it
    weight: float  # share of the corpus
    mix: tuple[float, float, float]  # positive, negative, neutral before and after the burst
    burst_mix: tuple[float, float, float]  # … during the event burst
    slots: dict[str, tuple[str, ...]]  # kw, tag, actor, person, pos, neg, neu
    subthemes: tuple[tuple[str, tuple[str, ...]], ...]  # (aspect, details)
    templates: dict[str, tuple[str, ...]]  # topic-specific body templates per stance


# ------------------------------------------------------------------------------------------ topics

TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(
        key="whu", name="武汉大学舆情", query="武汉大学", weight=1.25,
        mix=(0.35, 0.30, 0.35), burst_mix=(0.20, 0.55, 0.25),
        slots={
            "kw": ("武汉大学", "武汉大学", "武汉大学", "武大"),
            "tag": ("武汉大学", "武汉大学舆情", "武大回应", "武汉大学通报", "高校舆情"),
            "actor": ("校方", "武汉大学官方", "学校相关负责人", "武大宣传部", "涉事学院"),
            "person": ("在校生", "武大校友", "学生家长", "隔壁学校的同学", "高校老师", "毕业多年的老校友"),
            "pos": ("回应及时，态度也很诚恳", "处理过程公开透明", "总算给了学生一个交代", "樱花季的预约安排得井井有条",
                    "老师和学生的权益都照顾到了", "程序上挑不出毛病", "这才是一流大学应有的担当", "通报写得清清楚楚，值得肯定"),
            "neg": ("通报避重就轻，关键问题一个没回答", "拖了这么久才回应", "处理结果明显偏袒", "预约系统一直崩溃根本抢不到",
                    "学生的正当诉求被无视", "公关话术太敷衍了", "把舆论当成要压下去的麻烦", "一次次让校友失望"),
            "neu": ("目前学校已成立专门工作组", "相关调查仍在进行中", "通报全文约一千五百字", "学校表示将在近期公布后续进展",
                    "樱花季期间每日预约名额有限", "事件起因目前仍有不同说法", "涉事学院已暂停相关安排"),
        },
        subthemes=(
            ("情况通报", ("情况通报", "官方声明", "调查进展说明", "处理决定")),
            ("樱花季预约", ("樱花季预约入校", "校园限流措施", "赏樱预约系统")),
            ("学术争议", ("论文评审争议", "学位论文复核", "学术委员会的调查")),
            ("校园管理", ("图书馆管理规定", "宿舍管理新规", "校园开放政策")),
            ("招生与就业", ("招生宣传", "毕业生就业质量报告", "保研名额公示")),
        ),
        templates={
            "positive": ("作为{person}，看到{actor}发布的{detail}，{pos}，母校加油！{emo_pos}",
                         "珞珈山的樱花又开了，{detail}{pos}，武汉大学真的越来越好了{emo_pos}"),
            "negative": ("武汉大学这次的{detail}真的让{person}寒心，{neg}。{neg_close}{emo_neg}",
                         "身为{person}，对武大的{aspect}太失望了：{neg}，{neg2}。{emo_neg}"),
            "neutral": ("梳理一下武汉大学事件的时间线：{neu}；{neu2}。{neu_close}",),
        },
    ),
    TopicSpec(
        key="ev", name="新能源汽车价格战", query="新能源汽车", weight=1.2,
        mix=(0.40, 0.30, 0.30), burst_mix=(0.30, 0.50, 0.20),
        slots={
            "kw": ("新能源汽车", "新能源汽车", "新能源车", "电车", "国产电动车"),
            "tag": ("新能源汽车价格战", "车企降价", "电动车降价潮", "新能源汽车"),
            "actor": ("某头部车企", "多家新势力品牌", "合资品牌", "4S店经销商", "汽车行业协会"),
            "person": ("车主", "准备买车的打工人", "汽车销售", "老车主", "汽车行业分析师", "刚拿驾照的新手"),
            "pos": ("现在入手真的太香了", "降价之后性价比直接拉满", "消费者终于得到实惠了", "充电越来越方便了",
                    "开了半年非常满意", "技术进步带来的降价是好事", "智驾体验好到超出预期"),
            "neg": ("刚提车就降价三万，老车主心态崩了", "价格战打到最后都是质量缩水", "保值率暴跌，亏惨了",
                    "售后根本跟不上", "天天降价谁还敢买", "经销商快被压垮了", "续航虚标太严重了"),
            "neu": ("本月已有多家车企公布新价格", "行业协会呼吁理性竞争", "部分车型降幅在一到三万元之间",
                    "销量数据将于下月初公布", "业内人士认为价格战还会持续一段时间", "多款车型推出了限时补贴"),
        },
        subthemes=(
            ("官方降价", ("官方直降{int:1-4}万元", "限时一口价", "限时补贴政策")),
            ("老车主权益", ("老车主补偿方案", "保值回购承诺", "置换补贴")),
            ("电池与续航", ("电池质保政策", "冬季续航表现", "充电桩配套")),
            ("经销商压力", ("经销商库存压力", "门店促销活动", "零首付金融方案")),
            ("智能驾驶", ("智驾系统免费升级", "辅助驾驶功能", "车机OTA升级")),
        ),
        templates={
            "positive": ("{time}去4S店看了看，{detail}之后新能源汽车{pos}，果断下单！{emo_pos}",
                         "作为{person}必须说一句：{pos}，电车的体验真的回不去了{emo_pos}"),
            "negative": ("{detail}一出，{person}直接破防：{neg}！{neg_close}{emo_neg}",
                         "新能源汽车价格战卷成这样，{neg}，{neg2}。{emo_neg}"),
            "neutral": ("新能源汽车价格战第{int:2-9}轮：{neu}，{neu2}。{neu_close}",),
        },
    ),
    TopicSpec(
        key="ai", name="人工智能监管", query="人工智能", weight=1.0,
        mix=(0.40, 0.25, 0.35), burst_mix=(0.35, 0.40, 0.25),
        slots={
            "kw": ("人工智能", "人工智能", "AI", "大模型", "生成式人工智能"),
            "tag": ("人工智能监管", "AI换脸", "大模型备案", "AI生成内容标识", "人工智能"),
            "actor": ("监管部门", "网信部门", "平台方", "科技公司", "行业专家"),
            "person": ("程序员", "内容创作者", "法学研究者", "普通用户", "创业者", "大学老师"),
            "pos": ("监管及时跟上，安心多了", "给行业划了清晰的底线", "普通人终于有了维权依据", "规范发展才能走得更远",
                    "标识之后辨别真假容易多了", "这个办法考虑得很周到"),
            "neg": ("条款太模糊，执行起来很难", "小公司的合规成本高到离谱", "换脸诈骗防不胜防，太可怕了", "一刀切会扼杀创新",
                    "平台根本没有落实", "被骗的老人钱到现在都追不回来", "霸王条款让用户的数据裸奔"),
            "neu": ("相关办法将于下月起正式施行", "目前已有一百多款大模型完成备案", "征求意见稿共有二十余条",
                    "多家平台表示正在调整产品", "专家建议对人工智能分级分类管理", "相关标准仍在征求意见"),
        },
        subthemes=(
            ("内容标识", ("AI生成内容标识办法", "合成内容的显著标识要求", "平台的AI标签")),
            ("AI换脸诈骗", ("AI换脸诈骗案", "深度伪造视频", "声音克隆骗局")),
            ("大模型备案", ("大模型备案制度", "算法备案清单", "安全评估要求")),
            ("数据与版权", ("训练数据版权争议", "个人信息保护条款", "数据出境规定")),
            ("就业影响", ("AI替代岗位的讨论", "AI辅助办公", "AI写作工具")),
        ),
        templates={
            "positive": ("人工智能监管终于落地了，{detail}{pos}。{pos_close}{emo_pos}",
                         "作为{person}，我支持{actor}出台{detail}：{pos}，{pos2}。"),
            "negative": ("家里老人差点被AI换脸视频骗了，{neg}！人工智能监管必须再严一点{emo_neg}",
                         "{person}吐槽一句：{detail}{neg}，{neg_close}{emo_neg}"),
            "neutral": ("人工智能监管要点速览：{neu}；{neu2}。",),
        },
    ),
    TopicSpec(
        key="gaokao", name="高考志愿填报", query="高考志愿", weight=1.0,
        mix=(0.35, 0.30, 0.35), burst_mix=(0.30, 0.40, 0.30),
        slots={
            "kw": ("高考志愿", "高考志愿", "志愿填报", "高考填志愿"),
            "tag": ("高考志愿填报", "高考出分", "志愿填报避坑", "高考志愿"),
            "actor": ("省考试院", "高校招生办", "志愿填报机构", "班主任", "招生老师"),
            "person": ("高三家长", "今年的考生", "高中老师", "过来人", "大一新生", "复读生"),
            "pos": ("老师讲得特别清楚，少走了很多弯路", "孩子最后被理想的学校录取了", "免费的官方填报系统很好用",
                    "招生办回复得很及时", "选到了真正喜欢的专业", "一家人终于松了口气"),
            "neg": ("花了好几万咨询费结果还是滑档了", "填报机构全是套路", "招生宣传和实际情况差太多",
                    "专业调剂把孩子坑惨了", "信息不对称太严重了", "家长的焦虑被无情收割"),
            "neu": ("今年填报时间为期五天", "本科批次可填报四十五个志愿", "考试院将于近日公布投档线",
                    "建议参考近三年的录取位次", "部分高校新增了招生专业", "征集志愿将在下周开始"),
        },
        subthemes=(
            ("付费咨询", ("天价志愿填报服务", "一对一志愿规划", "付费填报卡")),
            ("专业选择", ("计算机专业热度", "医学专业选择", "冷门专业前景")),
            ("分数线", ("各省分数线公布", "位次换算", "往年录取数据")),
            ("平行志愿规则", ("平行志愿投档规则", "专业调剂选项", "院校专业组")),
            ("招生宣传", ("高校招生直播", "强基计划", "中外合作办学")),
        ),
        templates={
            "positive": ("高考志愿终于填完了！{pos}，{pos2}，感谢一路帮忙的老师{emo_pos}",
                         "过来人分享：{detail}认真研究一下，{pos}。祝考生们都能被心仪的大学录取{emo_pos}"),
            "negative": ("高考志愿填报的坑太多了，{neg}，{neg2}。{neg_close}{emo_neg}",
                         "{person}血泪教训：{detail}千万别信，{neg}！{emo_neg}"),
            "neutral": ("高考志愿填报提醒：{neu}，{neu2}。请以省考试院公布的信息为准。",),
        },
    ),
    TopicSpec(
        key="food", name="某品牌食品安全事件", query="食品安全", weight=1.15,
        mix=(0.25, 0.45, 0.30), burst_mix=(0.10, 0.70, 0.20),
        slots={
            "kw": ("某品牌", "某品牌", "涉事品牌", "这家品牌"),
            "tag": ("某品牌食品安全事件", "食品安全", "涉事门店停业整顿", "某品牌道歉"),
            "actor": ("涉事品牌", "市场监管局", "品牌总部", "涉事门店", "第三方检测机构"),
            "person": ("老顾客", "宝妈", "附近的上班族", "前员工", "食品专业的学生", "餐饮从业者"),
            "pos": ("监管部门出手很快，值得肯定", "品牌这次道歉还算诚恳", "退款流程很顺畅", "整改后后厨透明了很多",
                    "这种曝光对整个行业是好事", "查处力度大快人心"),
            "neg": ("看完暗访视频再也不敢吃了", "道歉声明全是套话，毫无诚意", "吃了这么多年感觉被背叛了",
                    "罚款这么少根本没有震慑力", "孩子吃完拉肚子，想想都后怕", "食品安全问题一次次发生，太恶心了"),
            "neu": ("涉事门店已暂停营业", "市场监管局已对相关批次产品抽样送检", "品牌方表示将配合调查",
                    "检测结果预计一周内公布", "目前尚无人员身体不适的报告", "相关批次产品已下架"),
        },
        subthemes=(
            ("后厨卫生", ("后厨卫生问题", "过期原料使用", "暗访视频")),
            ("监管处罚", ("市场监管部门的通报", "立案调查", "停业整顿决定")),
            ("品牌道歉", ("品牌道歉声明", "整改承诺", "全面自查")),
            ("消费者维权", ("退款赔偿方案", "集体维权", "消费者投诉")),
            ("检测结果", ("抽检结果", "第三方检测报告", "菌落总数超标的检测")),
        ),
        templates={
            "positive": ("某品牌食品安全事件后续：{actor}{pos}，{pos2}。{pos_close}{emo_pos}",),
            "negative": ("某品牌的{detail}看得我直犯恶心，{neg}，{neg2}！食品安全不是儿戏{emo_neg}",
                         "作为{person}，{neg}。某品牌必须给消费者一个说法{emo_neg}"),
            "neutral": ("某品牌食品安全事件进展：{neu}，{neu2}。{neu_close}",),
        },
    ),
    TopicSpec(
        key="travel", name="城市文旅热潮", query="文旅", weight=1.1,
        mix=(0.55, 0.20, 0.25), burst_mix=(0.55, 0.30, 0.15),
        slots={
            "kw": ("城市文旅", "文旅", "文旅", "城市旅游"),
            "tag": ("城市文旅热潮", "文旅局长出圈", "特种兵式旅游", "城市文旅"),
            "actor": ("当地文旅局", "景区管理方", "文旅局长", "本地商户", "交通部门"),
            "person": ("外地游客", "本地人", "旅游博主", "大学生", "带娃出游的家长", "退休阿姨"),
            "pos": ("当地人太热情了", "物价实在，一点都不宰客", "城市干净又有烟火气", "文旅局宣传得太用心了",
                    "志愿者服务很贴心", "玩得超级开心，还想再来"),
            "neg": ("人挤人，排队排了三个小时", "酒店价格翻了好几倍", "网红店名不副实", "景区管理混乱，体验很差",
                    "被热搜骗来，太失望了", "交通拥堵到让人崩溃"),
            "neu": ("假期接待游客超过百万人次", "当地新增了多条旅游公交专线", "部分景区实行预约入园",
                    "文旅局发布了出行提示", "高铁站临时加开了班次", "夜市营业时间延长到凌晨两点"),
            "place": ("哈尔滨", "淄博", "天水", "开封", "泉州", "洛阳", "大理", "长沙"),
        },
        subthemes=(
            ("美食打卡", ("{place}烧烤", "{place}夜市小吃", "{place}特色早餐")),
            ("文旅宣传", ("文旅局长的宣传视频", "{place}城市宣传片", "免费景区政策")),
            ("交通住宿", ("{place}的酒店价格", "高铁加开班次", "旅游公交专线")),
            ("特种兵旅游", ("{place}特种兵式旅游攻略", "一日游路线", "夜游项目")),
            ("服务与秩序", ("景区排队", "商户诚信经营", "志愿者服务")),
        ),
        templates={
            "positive": ("城市文旅天花板！在{place}玩了三天，{pos}，{pos2}{emo_pos}",
                         "{place}文旅这波真的赢麻了，{pos}。{pos_close}{emo_pos}"),
            "negative": ("劝大家别跟风去了，{neg}，{neg2}。所谓文旅热潮就是花钱买罪受{emo_neg}",),
            "neutral": ("{place}文旅数据出炉：{neu}，{neu2}。",),
        },
    ),
    TopicSpec(
        key="prefab", name="预制菜进校园", query="预制菜", weight=0.8,
        mix=(0.25, 0.45, 0.30), burst_mix=(0.15, 0.65, 0.20),
        slots={
            "kw": ("预制菜", "预制菜进校园", "预制菜", "校园餐"),
            "tag": ("预制菜进校园", "校园餐安全", "预制菜标准", "预制菜"),
            "actor": ("教育部门", "学校食堂", "配餐公司", "家委会", "行业协会"),
            "person": ("小学生家长", "中学老师", "营养师", "食堂师傅", "初中生", "二年级孩子的妈妈"),
            "pos": ("食堂公开透明，家长放心多了", "营养搭配很科学", "现做现吃，孩子很喜欢", "陪餐制度很有必要",
                    "标准出台是件好事", "学校的回应让人安心"),
            "neg": ("孩子天天吃加热的料理包，太心疼了", "家长完全不知情，太过分了", "配餐公司就是在糊弄孩子",
                    "价格不便宜质量却很差", "学校把关不严，必须追责", "添加剂一大堆，谁敢给孩子吃"),
            "neu": ("多地教育部门表示暂不推广", "相关国家标准正在制定中", "部分学校实行家长陪餐制度",
                    "预制菜的定义目前仍有争议", "行业协会发布了团体标准", "当地已开展校园餐专项检查"),
        },
        subthemes=(
            ("家长知情权", ("家长知情权", "食堂开放日", "家委会陪餐")),
            ("营养与添加剂", ("营养搭配标准", "添加剂问题", "冷链运输")),
            ("国家标准", ("预制菜国家标准", "预制菜的定义", "标签标识")),
            ("校外配餐", ("校外配餐公司", "中央厨房", "配餐招标流程")),
        ),
        templates={
            "positive": ("去学校参加了食堂开放日，{pos}，预制菜进校园的担心少了一大半{emo_pos}",),
            "negative": ("预制菜进校园，问过家长了吗？{neg}，{neg2}！{emo_neg}",
                         "作为{person}，{neg}。预制菜不该出现在孩子的餐盘里{emo_neg}"),
            "neutral": ("关于预制菜进校园：{neu}，{neu2}。{neu_close}",),
        },
    ),
    TopicSpec(
        key="ticket", name="演唱会抢票与黄牛", query="演唱会", weight=0.9,
        mix=(0.35, 0.40, 0.25), burst_mix=(0.20, 0.60, 0.20),
        slots={
            "kw": ("演唱会", "演唱会门票", "演唱会", "抢票"),
            "tag": ("演唱会抢票", "黄牛", "演唱会实名制购票", "演唱会退票"),
            "actor": ("主办方", "票务平台", "文旅部门", "公安机关", "场馆方"),
            "person": ("歌迷", "学生党", "打工人", "票务从业者", "场馆附近的居民", "第一次看演唱会的小白"),
            "pos": ("实名制之后终于抢到原价票了", "现场太震撼了，值回票价", "主办方的入场安排很有序",
                    "平台退票很爽快", "严打黄牛大快人心", "和朋友一起大合唱，幸福感爆棚"),
            "neg": ("开售一秒就没了，全被黄牛扫光", "原价一千的票被炒到一万", "退票要扣百分之二十手续费，太黑了",
                    "入场排了两个小时，体验极差", "票务平台系统一直卡死", "内部票根本不公开，太不公平了"),
            "neu": ("本轮巡演共有十余场", "公安机关通报了一起倒票案件", "主办方表示将全面实行实名制",
                    "门票将于本周五中午开售", "部分场次新增了看台票", "演出当天将实行交通管制"),
        },
        subthemes=(
            ("黄牛加价", ("黄牛加价票", "代抢服务", "内部票")),
            ("实名制", ("强实名制", "人脸识别入场", "门票转赠规则")),
            ("退票规则", ("退票手续费", "不可退票条款", "演出取消后的退款")),
            ("现场体验", ("现场音响效果", "入场秩序", "散场交通")),
        ),
        templates={
            "positive": ("{time}的演唱会太值了！{pos}，{pos2}{emo_pos}",),
            "negative": ("演唱会抢票就是一场骗局：{neg}，{neg2}。{neg_close}{emo_neg}",),
            "neutral": ("演唱会购票须知：{neu}，{neu2}。",),
        },
    ),
)

DEMO_TOPICS: list[str] = [t.name for t in TOPIC_SPECS]

# --------------------------------------------------------------------------------- shared wording

_COMMON: dict[str, tuple[str, ...]] = {
    "time": ("今天", "刚刚", "昨晚", "这两天", "早上", "下班路上", "周末"),
    "pos_close": ("点赞！", "必须支持！", "这波操作我服！", "希望越来越好！", "真心觉得很棒！", "太棒了！", "给力！", "开心！"),
    "neg_close": ("太让人失望了。", "真的无语。", "寒心。", "气死我了！", "必须给个说法！", "这也太离谱了！", "越想越生气。"),
    "neu_close": ("后续再看。", "坐等后续。", "先观望一下。", "理性讨论。", "等权威信息吧。", "持续关注。"),
    "emo_pos": ("[赞]", "[鼓掌]", "[哈哈]", "[心]", "[good]", "[给力]", "[爱你]", "[太开心]"),
    "emo_neg": ("[怒]", "[泪]", "[衰]", "[抓狂]", "[吐]", "[怒骂]", "[失望]", "[伤心]"),
    "emo_neu": ("[思考]", "[吃瓜]", "[围观]", "[费解]", "[doge]"),
    "media": ("演示日报", "演示晚报", "演示财经", "演示新闻网", "演示都市报", "演示科技频道", "演示教育观察"),
}

_BODY: dict[str, tuple[str, ...]] = {
    "positive": (
        "{time}看到{actor}关于{detail}的消息，{pos}，{pos_close}{emo_pos}",
        "说句公道话，{kw}这次{pos}。{pos2}，{pos_close}{emo_pos}",
        "作为{person}，我觉得{detail}这件事{actor}做得不错：{pos}。{emo_pos}",
        "关注{kw}好几天了，{pos}，而且{pos2}。{pos_close}",
        "{emo_pos}{kw}的{aspect}终于有好消息了！{pos}，{pos_close}",
        "身边好多{person}都在聊{kw}，大家普遍觉得{pos}。{pos_close}{emo_pos}",
        "为{actor}点个赞，{detail}这一块{pos}。{pos_close}",
        "不得不说，{pos}，{pos2}。{kw}这波真的可以，{pos_close}{emo_pos}",
    ),
    "negative": (
        "{time}刷到{kw}{aspect}的事，{neg}，{neg_close}{emo_neg}",
        "作为{person}真的忍不了了：{neg}！{neg2}。{neg_close}{emo_neg}",
        "{actor}的{detail}看完只想说，{neg}。{neg_close}",
        "{kw}又上热搜了，{neg}，{neg2}。{emo_neg}{emo_neg2}",
        "我就想问问{actor}，{neg}，这就是你们的态度吗？{neg_close}",
        "{emo_neg}关于{aspect}，{neg}。身边的{person}都很气愤，{neg_close}",
        "越看越生气，{kw}{neg}，{neg_close}{emo_neg}",
    ),
    "neutral": (
        "{kw}最新进展：{neu}，{neu2}。{neu_close}{emo_neu}",
        "关于{kw}{aspect}，目前掌握的信息是{neu}。{neu_close}",
        "梳理一下：{actor}已就{detail}作出说明，{neu}。{neu_close}",
        "有没有{person}了解{kw}{aspect}的具体情况？听说{neu}，{neu_close}{emo_neu}",
        "【{kw}】{neu}；{neu2}。{neu_close}",
        "据了解，{neu}。{actor}表示，{neu2}。",
    ),
}

_EXTRA_CLAUSE = {"positive": "{pos3}，{pos_close}", "negative": "{neg3}，{neg_close}", "neutral": "{neu3}，{neu_close}"}

_TITLE: dict[str, tuple[str, ...]] = {
    "positive": ("为{actor}点赞！{kw}{aspect}有新变化", "{kw}{aspect}，这次真的做对了", "实测{detail}：{pos}",
                 "{person}亲历：{pos}"),
    "negative": ("{kw}{aspect}翻车了？{neg}", "太离谱！{kw}{detail}引发众怒", "{person}亲述：{neg}",
                 "{kw}{aspect}，到底谁来负责？"),
    "neutral": ("{kw}{aspect}最新进展", "一文看懂{kw}{detail}", "{kw}{aspect}：{neu}", "关于{kw}{detail}，你需要知道的几件事"),
}

_QUESTION = ("如何看待{kw}{aspect}？", "{kw}{detail}的背后反映了什么问题？", "怎么评价{actor}对{detail}的处理？",
             "{kw}的{aspect}，真实情况是怎样的？", "作为{person}，你怎么看{kw}{aspect}？")

_NEWS_TITLE: dict[str, tuple[str, ...]] = {
    "positive": ("{actor}回应{detail}，获网友点赞", "{kw}{aspect}迎来积极变化", "{kw}{aspect}：{pos}"),
    "negative": ("{kw}{detail}引发质疑", "{kw}{aspect}争议持续发酵", "网友热议{kw}{aspect}：{neg}"),
    "neutral": ("{kw}{aspect}最新进展：{neu}", "{actor}就{detail}作出说明", "关注丨{kw}{aspect}"),
}

_NEWS_LEAD = {
    "positive": "不少网友为此点赞，认为{pos}；也有{person}表示，{pos2}，{pos_close}",
    "negative": "不少网友对此表示不满，认为{neg}；也有{person}直言，{neg2}，{neg_close}",
    "neutral": "{actor}表示，{neu2}。",
}

_COMMENT: dict[str, tuple[str, ...]] = {
    "positive": ("说得太对了{emo_pos}", "支持{actor}！{pos}", "同意，{pos}", "点赞，{pos_close}", "+1，{pos}{emo_pos}",
                 "终于有人说句公道话了{emo_pos}", "同为{person}，{pos}"),
    "negative": ("{neg}，{neg_close}{emo_neg}", "别洗了，{neg}{emo_neg}", "气死了，{neg}{emo_neg}", "呵呵，{neg}，{neg_close}",
                 "同感，{neg}，太失望了", "同为{person}，{neg}，{neg_close}"),
    "neutral": ("蹲一个后续{emo_neu}", "有没有更详细的信息？", "{neu}，等官方消息吧", "理性看待吧，{neu}", "mark一下，坐等后续",
                "所以{kw}的{aspect}最后怎么样了？"),
}

_HOURS = (2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 3, 4, 4, 5, 6, 5, 4, 4, 4, 5, 6, 7, 8, 8, 7, 4)

# likes ~ log-normal(mu, sigma); comments, shares and views as log-normal ratios of likes
_ENGAGEMENT = {
    #            mu   sigma comments shares views
    "weibo": (2.3, 2.0, 0.30, 0.20, 0),
    "douyin": (4.0, 2.1, 0.05, 0.08, 25),
    "kuaishou": (3.6, 2.0, 0.06, 0.06, 30),
    "bilibili": (3.2, 1.9, 0.08, 0.05, 20),
    "xhs": (3.0, 1.9, 0.15, 0.30, 0),
    "zhihu": (2.5, 2.0, 0.15, 0.05, 0),
    "tieba": (1.5, 1.6, 1.50, 0.01, 0),
    "news": (2.0, 1.8, 0.20, 0.30, 80),
}

_SLOT_RE = re.compile(r"\{([a-z_]+?)(\d?)(?::(\d+)-(\d+))?\}")


# ------------------------------------------------------------------------------------------ filling

class _Filler:
    """Fills {slot}, {slot2} (a different value of the same slot) and {int:a-b} from one RNG."""

    def __init__(self, rng: random.Random, slots: dict[str, tuple[str, ...]]):
        self.rng = rng
        self.slots = slots
        self.used: dict[str, list[str]] = {}

    def pick(self, name: str) -> str:
        options = self.slots[name]
        used = self.used.setdefault(name, [])
        fresh = [o for o in options if o not in used] or list(options)
        value = self.rng.choice(fresh)
        used.append(value)
        return value

    def fill(self, template: str, depth: int = 0) -> str:
        def one(m: re.Match) -> str:
            name, _n, lo, hi = m.groups()
            if name == "int":
                return str(self.rng.randint(int(lo), int(hi)))
            value = self.pick(name)
            return self.fill(value, depth + 1) if "{" in value and depth < 3 else value

        return _SLOT_RE.sub(one, template)


def _weighted(rng: random.Random, options, weights):
    return rng.choices(options, weights=weights, k=1)[0]


_REPEAT_RE = re.compile(r"([\u4e00-\u9fff]{2,6})\1")


def _tidy(text: str) -> str:
    """'预制菜' + '预制菜国家标准' must not read 预制菜预制菜国家标准."""
    return _REPEAT_RE.sub(r"\1", text)


def _fit(text: str, lo: int, hi: int) -> str:
    """Cut an over-long text at the last sentence break before `hi` characters."""
    if len(text) <= hi:
        return text
    cut = text[:hi]
    for mark in ("。", "！", "？", "；", "，"):
        pos = cut.rfind(mark)
        if pos >= lo:
            return cut[:pos + 1]
    return cut[:hi - 1] + "…"


# ------------------------------------------------------------------------------------ platform shapes

def _hashtags(f: _Filler, style: str, n: int) -> str:
    tags = []
    for _ in range(n):
        tag = f.pick("tag")
        if tag not in tags:
            tags.append(tag)
    if style == "weibo":
        return "".join(f"#{t}#" for t in tags)
    if style == "xhs":
        return " ".join(f"#{t}[话题]#" for t in tags)
    return " ".join(f"#{t}" for t in tags)


def _shape(rng: random.Random, f: _Filler, platform: str, stance: str, topic: TopicSpec) -> tuple[str, str]:
    """(title, content) in the platform's usual shape."""
    body = f.fill(rng.choice(_BODY[stance] + topic.templates.get(stance, ()) * 2))
    title = ""
    if platform == "weibo":
        if rng.random() < 0.75:
            body = _hashtags(f, "weibo", 1 if rng.random() < 0.7 else 2) + body
        if rng.random() < 0.1:
            body += f" @演示用户{rng.randrange(10000):04d}"
        content = body
    elif platform in ("douyin", "kuaishou"):
        title = f.fill(rng.choice(_TITLE[stance]))
        lead = "老铁们，" if platform == "kuaishou" and rng.random() < 0.5 else ""
        content = f"{lead}{body} {_hashtags(f, 'plain', 2 + rng.randrange(2))}"
    elif platform == "bilibili":
        title = f.fill(rng.choice(("【{kw}】", "{int:3-20}分钟看懂：", "【深度】", ""))) + f.fill(rng.choice(_TITLE[stance]))
        content = f.fill("本期视频聊聊{kw}的{aspect}。") + body + rng.choice(("一键三连支持一下！", "欢迎弹幕讨论。", ""))
    elif platform == "xhs":
        title = f.fill(rng.choice(_TITLE[stance])) + rng.choice(("✨", "😭", "🔥", "💡", "‼️"))
        opener = {"positive": "姐妹们！超推荐！", "negative": "避雷避雷！太失望了，", "neutral": "整理了一下，"}[stance]
        content = f"{opener}{body} {_hashtags(f, 'xhs', 2)}"
    elif platform == "zhihu":
        title = f.fill(rng.choice(_QUESTION))
        opener = f.fill(rng.choice(("谢邀。", "利益相关，{person}一枚。", "说点不一样的。", "")))
        content = opener + body
    elif platform == "tieba":
        title = f.fill(rng.choice(_TITLE[stance] + ("{kw}吧友进来聊聊{aspect}",)))
        content = body + rng.choice(("吧友们怎么看？", "", "顶一下。"))
    else:  # news
        title = f.fill(rng.choice(_NEWS_TITLE[stance]))
        lead = f.fill("据{media}消息，{time}，{actor}就{kw}{aspect}相关情况作出回应。{neu}。")
        content = lead + f.fill(_NEWS_LEAD[stance])
    content = _tidy(content)
    if len(content) < POST_LEN[0]:
        content = _tidy(content + f.fill(_EXTRA_CLAUSE[stance]))
    return _fit(_tidy(title), 4, 60), _fit(content, POST_LEN[0], POST_LEN[1])


# ------------------------------------------------------------------------------------------ timing

def _end_day(seed: int) -> date:
    """The last day of the demo window: from the seed, never from the clock."""
    return date(2025, 1, 1) + timedelta(days=random.Random(seed * 7919 + 17).randrange(365))


def _window(seed: int) -> tuple[datetime, datetime]:
    end = datetime.combine(_end_day(seed), datetime.min.time()) + timedelta(hours=23, minutes=59, seconds=59)
    start = datetime.combine(_end_day(seed) - timedelta(days=WINDOW_DAYS - 1), datetime.min.time())
    return start, end


def demo_window(seed: int = 7) -> tuple[datetime, datetime]:
    """First and last moment any demo record of this seed can have."""
    return _window(seed)


def _moment(rng: random.Random, start: datetime, day: int) -> datetime:
    hour = _weighted(rng, range(24), _HOURS)
    return start + timedelta(days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


# ------------------------------------------------------------------------------------------ engagement

def _engagement(rng: random.Random, platform: str, boost: float) -> dict[str, int]:
    mu, sigma, c_ratio, s_ratio, v_ratio = _ENGAGEMENT[platform]
    likes = rng.lognormvariate(mu + boost, sigma)
    if rng.random() < 0.01:  # the rare post that goes viral
        likes *= 5 * rng.paretovariate(1.2)
    likes = int(min(likes, 5e7))
    comments = int(likes * c_ratio * rng.lognormvariate(0, 0.6))
    shares = int(likes * s_ratio * rng.lognormvariate(0, 0.8))
    views = int((likes + 10) * v_ratio * rng.lognormvariate(0, 0.5)) if v_ratio else 0
    return {"likes": likes, "comments": comments, "shares": shares, "views": views}


# ------------------------------------------------------------------------------------------ authors

class _Authors:
    """A Zipf-like pool of demo users: a few post often, most post once or twice."""

    def __init__(self, rng: random.Random, size: int = 2000):
        self.rng = rng
        self.ids = [f"{i:04d}" for i in rng.sample(range(10000), size)]
        self.cum = list(_accumulate([1.0 / (i + 1) ** 0.9 for i in range(size)]))

    def user(self) -> str:
        return "演示用户" + self.rng.choices(self.ids, cum_weights=self.cum, k=1)[0]


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


# ------------------------------------------------------------------------------------------ records

def _labels(seed: int, topic: str, subtheme: str, stance: str) -> dict[str, Any]:
    """Fields the importer keeps as extras: what marks a record as demo data, and its intended stance
    (for measuring the sentiment classifier; the sentiment column itself stays empty)."""
    return {"demo": True, "demo_seed": seed, "demo_topic": topic, "demo_subtheme": subtheme, "demo_stance": stance}


def _url(platform: str, post_id: str) -> str:
    return f"{DEMO_URL_PREFIX}{platform}/{post_id}"


def generate_demo_records(seed: int = 7, posts: int = 3000) -> list[dict[str, Any]]:
    """`posts` synthetic posts plus comments under the hot ones; identical for the same seed."""
    if not isinstance(posts, int) or isinstance(posts, bool) or posts < 0:
        raise ValueError(f"posts must be a non-negative integer, not {posts!r}")
    if posts == 0:
        return []
    seed = int(seed)
    rng = random.Random(seed)
    start, end = _window(seed)
    # Topic calendars first, so they do not depend on how many posts are asked for.
    events = {t.key: (rng.randrange(15, WINDOW_DAYS - 8), rng.randrange(3, WINDOW_DAYS - 3)) for t in TOPIC_SPECS}
    authors = _Authors(random.Random(seed * 31 + 1))
    platforms = list(PLATFORMS)
    p_weights = [_PLATFORM_WEIGHTS[p] for p in platforms]
    t_weights = [t.weight for t in TOPIC_SPECS]

    records: list[dict[str, Any]] = []
    for i in range(posts):
        # the first posts cycle through every topic and platform, so even a tiny corpus covers them all
        topic = TOPIC_SPECS[i] if i < len(TOPIC_SPECS) else _weighted(rng, TOPIC_SPECS, t_weights)
        platform = platforms[(i * 3) % len(platforms)] if i < len(platforms) else _weighted(rng, platforms, p_weights)
        event_day, minor_day = events[topic.key]
        phase = rng.random()
        if phase < 0.40:  # the event burst: most on the day, decaying over the next days
            day, in_burst, boost = event_day + min(int(rng.expovariate(0.8)), 6), True, 1.0
        elif phase < 0.48:  # a smaller second wave
            day, in_burst, boost = minor_day + min(int(rng.expovariate(1.2)), 2), False, 0.4
        else:
            day, in_burst, boost = rng.randrange(WINDOW_DAYS), False, 0.0
        day = min(day, WINDOW_DAYS - 1)
        stance = _weighted(rng, _STANCES, topic.burst_mix if in_burst else topic.mix)
        aspect, details = topic.subthemes[rng.randrange(len(topic.subthemes))]
        slots = {**_COMMON, **topic.slots, "aspect": (aspect,), "detail": details}
        if "place" in slots:  # one city per post
            slots["place"] = (rng.choice(slots["place"]),)
        f = _Filler(rng, slots)
        title, content = _shape(rng, f, platform, stance, topic)
        post_id = f"demo{seed}-{_PLATFORM_CODES[platform]}-{i:06d}"
        author = rng.choice(_COMMON["media"]) if platform == "news" else authors.user()
        records.append({
            "platform": platform, "post_id": post_id, "kind": "post", "parent_id": None,
            "title": title, "content": content, "author": author,
            "publish_time": min(_moment(rng, start, day), end).isoformat(),
            **_engagement(rng, platform, boost),
            "url": _url(platform, post_id), "keyword": topic.name, "sentiment": None,
            **_labels(seed, topic.key, aspect, stance),
        })

    records.extend(_comments(rng, records, authors, end))
    return records


def _comments(rng: random.Random, posts: list[dict], authors: _Authors, end: datetime) -> list[dict]:
    """Comments under the hottest ~5% of posts, agreeing with the post two times in three."""
    by_key = {t.key: t for t in TOPIC_SPECS}
    ranked = sorted(posts, key=lambda r: (-hotness(r["likes"], r["comments"], r["shares"], r["views"]), r["post_id"]))
    hot = ranked[:max(1, len(posts) // 20)]
    out = []
    for parent in hot:
        topic = by_key[parent["demo_topic"]]
        details = next(d for a, d in topic.subthemes if a == parent["demo_subtheme"])
        n = min(max(3, int(2 + 3 * math.log10(1 + parent["comments"]))), 25, max(parent["comments"], 3))
        parent["comments"] = max(parent["comments"], n)
        t0 = parse_time(parent["publish_time"])
        for j in range(n):
            if rng.random() < 0.65:
                stance = parent["demo_stance"]
            else:
                stance = _weighted(rng, _STANCES, topic.mix)
            f = _Filler(rng, {**_COMMON, **topic.slots, "aspect": (parent["demo_subtheme"],), "detail": details})
            text = f.fill(rng.choice(_COMMENT[stance]))
            if parent["platform"] == "weibo" and rng.random() < 0.15:
                text = f"回复@{authors.user()}:{text}"
            cid = f"{parent['post_id']}-c{j:02d}"
            when = min(t0 + timedelta(hours=rng.expovariate(1 / 6)), end)
            out.append({
                "platform": parent["platform"], "post_id": cid, "kind": "comment", "parent_id": parent["post_id"],
                "title": "", "content": _fit(_tidy(text), COMMENT_LEN[0], COMMENT_LEN[1]), "author": authors.user(),
                "publish_time": when.replace(microsecond=0).isoformat(),
                "likes": int(rng.lognormvariate(1.0, 1.6)), "comments": 0, "shares": 0, "views": 0,
                "url": f"{parent['url']}#comment-{j:02d}", "keyword": parent["keyword"], "sentiment": None,
                **_labels(parent["demo_seed"], topic.key, parent["demo_subtheme"], stance),
            })
    return out


# ------------------------------------------------------------------------------------------ import

def generate_demo_corpus(db, seed: int = 7, posts: int = 3000):
    """Generate and import the demo corpus (source "demo"); running it again updates, never duplicates."""
    from core.corpus.importers import import_records

    records = generate_demo_records(seed=seed, posts=posts)
    return import_records(db, records, source=DEMO_SOURCE, default_platform="unknown")
