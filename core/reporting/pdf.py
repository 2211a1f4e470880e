"""The report as a PDF, Chinese included, drawn from its JSON document (core.reporting.types.ReportDocument).

Why fpdf2 (pure Python; needs only fontTools, Pillow and defusedxml, all wheels) with a CJK
TrueType font:

- WeasyPrint renders our HTML and CSS best, but needs Pango/HarfBuzz/fontconfig system libraries:
  not pip-installable, a frequent failure on Streamlit Community Cloud and Windows.
- reportlab (and xhtml2pdf on top of it) is pip-installable, but xhtml2pdf's CSS support is old and
  brittle, and reportlab's CJK path means either its CID fonts (Adobe's STSong-Light: not embedded,
  so a reader without the Asian font pack sees boxes) or the same TTF registration fpdf2 does, with
  a heavier API and a C-accelerated package we do not otherwise need.
- Browser printing (the HTML report has print CSS, core/reporting/templates/report.css) gives the
  best result for a person at a browser, but it is not a file the app or the CLI can hand over, and
  a headless Chromium is not available on Community Cloud.

fpdf2 embeds (subsets) the font it is given, so the PDF shows Chinese on any reader. It needs a
font with CJK glyphs: `SHOAL_PDF_FONT` (a .ttf/.otf/.ttc path) if set, else the first found of
WenQuanYi Micro Hei / Zen Hei, Noto Sans CJK, Droid Sans Fallback, and the macOS/Windows system
fonts. On Streamlit Community Cloud `packages.txt` installs fonts-wqy-microhei (Debian's package,
the font scripts/test.sh installs for the tests). No well-kept pip package ships a CJK font (the few
on PyPI are unmaintained repackagings), so the font comes from the system or from SHOAL_PDF_FONT. With no font found, `NoCjkFont` says what to
install. The PDF holds the report's title and meta line, banners and notes, the sections (each
section's Markdown through the same renderer and sanitiser as the HTML file, images dropped, so
nothing is ever fetched), the sources with their links, and the provenance; the charts stay in the
HTML report (fpdf2's SVG support does not cover them reliably).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from markupsafe import Markup, escape

from core.reporting.render import LABELS, generated_label, section_html
from core.reporting.text import ENGINE_LABELS, src_label
from core.reporting.types import ReportDocument
from core.research.offline import platform_name

FONT_ENV = "SHOAL_PDF_FONT"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",       # Debian/Ubuntu fonts-wqy-microhei (packages.txt)
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",         # fonts-wqy-zenhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",    # Fedora, Arch
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # fonts-droid-fallback
    "/System/Library/Fonts/STHeiti Medium.ttc",             # macOS
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "C:/Windows/Fonts/msyh.ttc",                            # Windows: Microsoft YaHei
    "C:/Windows/Fonts/simhei.ttf",
)
FAMILY = "shoalcjk"
FALLBACK = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)  # symbols the CJK font lacks (⚠, ✓), if present
_INTERNAL_LINK_RE = re.compile(r'<a href="#[^"]*"[^>]*>(.*?)</a>', re.S)
_TH_RE = re.compile(r"<(/?)th\b", re.I)
_IMG_RE = re.compile(r"<img\b[^>]*>", re.I)
_MARK_TAG_RE = re.compile(r"</?(?:mark|span|sup|sub|div|section|del|s|code)\b[^>]*>", re.I)


class NoCjkFont(RuntimeError):
    """No font with Chinese glyphs: the message says what to install or set."""


def find_cjk_font(explicit: str | None = None) -> Path:
    """The font the PDF embeds: `explicit`, else SHOAL_PDF_FONT, else a known system CJK font."""
    chosen = explicit or os.environ.get(FONT_ENV, "").strip()
    if chosen:
        p = Path(chosen).expanduser()
        if p.is_file():
            return p
        raise NoCjkFont(f"{FONT_ENV}={chosen} is not a file; point it at a .ttf/.otf/.ttc font with Chinese glyphs")
    for c in FONT_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise NoCjkFont("no font with Chinese glyphs found for the PDF: install fonts-wqy-microhei (apt; on Streamlit "
                    f"Community Cloud list it in packages.txt) or set {FONT_ENV} to a .ttf/.otf/.ttc CJK font")


def _section_body(html: str) -> str:
    """A section's safe HTML, reduced to what fpdf2's write_html draws (no images: nothing is fetched)."""
    html = _IMG_RE.sub("", html)
    html = _MARK_TAG_RE.sub("", html)
    html = _INTERNAL_LINK_RE.sub(r"\1", html)  # citation links point into the HTML file, not the PDF
    html = _TH_RE.sub(r"<\1td", html)  # a header cell would ask for a bold face (see render_pdf)
    return html


def pdf_html(doc: ReportDocument) -> str:
    """The PDF's content as the small HTML dialect fpdf2's write_html draws (all text escaped)."""
    zh, d = doc.zh, doc.to_dict()
    r, L = d["report"], LABELS[zh]
    e = escape
    parts = [f"<h1>{e(r.get('title', ''))}</h1>",
             f"<p><font size=\"9\" color=\"#5b636e\">{e(L['type'])}: {e(r.get('type_name', ''))} · {e(L['generated'])}: "
             f"{e(generated_label(r))} · {e(L['mode'])}: {e(L['llm'] if r.get('mode') == 'llm' else L['offline'])} · "
             f"{e(L['run'])} {e(r.get('run_id', ''))} · {e(L['report_id'])} {e(r.get('id', ''))}</font></p>"]
    banner = d["banner"]
    if banner.get("coverage"):
        parts.append(f"<p><b>⚠ {e(banner['coverage'])}</b></p>")
    if banner.get("partial"):
        parts.append(f"<p><b>{e(L['partial'])}</b> {e(L['partial_text'])}</p>")
        parts.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in banner.get("missing") or []) + "</ul>")
    if d["notices"]:
        parts.append(f"<p><b>{e(L['notices'])}</b></p>")
        parts.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in d["notices"]) + "</ul>")
    html = section_html(doc)
    for sec in doc.sections:
        badge = f" ({L['failed']})" if sec.status == "failed" else ""
        parts.append(f"<h2>{sec.index}. {e(sec.title)}{e(badge)}</h2>")
        if sec.note:
            parts.append(f"<p><i>{e(sec.note)}</i></p>")
        parts.append(_section_body(str(html.get(sec.key, ""))))
        engines = ", ".join(L["forum"] if x == "forum" else ENGINE_LABELS.get(x, x) for x in sec.engines)
        parts.append(f"<p><font size=\"8\" color=\"#5b636e\">{e(L['from'])}: {e(engines or '—')} · "
                     f"{e(L['llm'] if sec.mode == 'llm' else L['offline'])} · {e(L['trace'])} {e(sec.trace_id)}"
                     "</font></p>")
    parts.append(f"<h2>{e(L['sources'])}</h2>")
    if not doc.sources:
        parts.append(f"<p>{e(L['no_sources'])}</p>")
    for s in doc.sources:
        where = platform_name(s.get("platform") or "", zh) if s.get("platform") else s.get("provider", "")
        link = (f" — <a href=\"{e(s['link'])}\">{e(s['link'])}</a>" if s.get("link") else "")
        parts.append(f"<p><font size=\"9\">[{s['n']}] {e(src_label(s, 120))} — {e(where)} — "
                     f"{e((s.get('published') or 'n.d.')[:10])}{link}</font></p>")
    prov = d["provenance"]
    parts.append(f"<h2>{e(L['method'])}</h2>")
    parts.append(f"<p><font size=\"9\">{e(L['run'])} {e(prov.get('run_id', ''))} · {e(L['trace'])} "
                 f"{e(prov.get('run_trace_id', ''))} · {e(L['job'])} {e(prov.get('job_id', ''))}</font></p>")
    rows = "".join(f"<tr><td>{e(ENGINE_LABELS.get(k, k))}</td><td>{e(L['job_status'].get(v.get('status'), v.get('status')))}"
                   f"</td><td>{e(v.get('paragraphs', 0))}</td><td>{e(v.get('sources', 0))}</td></tr>"
                   for k, v in (prov.get("engines") or {}).items())
    if rows:
        head = "".join(f"<td><font color=\"#1f3a68\">{e(L[k])}</font></td>"
                       for k in ("engine", "status", "paragraphs", "n_sources"))
        parts.append(f"<table width=\"100%\"><tr>{head}</tr>{rows}</table>")
    parts.append(f"<p><font size=\"8\" color=\"#5b636e\">{e(L['footer'])}</font></p>")
    return str(Markup("\n").join(Markup(p) for p in parts))


def _tag_styles() -> dict:
    from fpdf.enums import TextEmphasis
    from fpdf.fonts import FontFace, TextStyle

    plain = TextEmphasis.NONE
    strong = FontFace(emphasis=plain, color="#1f3a68")
    soft = FontFace(emphasis=plain, color="#444444")
    heading = {f"h{n}": TextStyle(font_family=FAMILY, font_style="", color="#1f2328", font_size_pt=size,
                                  t_margin=4, b_margin=1) for n, size in ((1, 18), (2, 14), (3, 12), (4, 11),
                                                                         (5, 10.5), (6, 10.5))}
    return {"b": strong, "strong": strong, "em": soft, "i": soft, "dt": TextStyle(font_style=""),
            "code": FontFace(family=FAMILY), "pre": TextStyle(font_family=FAMILY, t_margin=2),
            "blockquote": TextStyle(color="#3d444d", t_margin=2, b_margin=2, l_margin=6), **heading}


def render_pdf(doc: ReportDocument, font: str | Path | None = None) -> bytes:
    """The report as PDF bytes; raises NoCjkFont when no font with Chinese glyphs is available."""
    from fpdf import FPDF  # imported here: only the PDF export needs it

    font_path = find_cjk_font(str(font) if font else None)

    class _Pdf(FPDF):
        def footer(self) -> None:  # page numbers
            self.set_y(-12)
            self.set_font(FAMILY, size=8)
            self.set_text_color(120, 120, 120)
            self.cell(0, 8, f"{self.page_no()} / {{nb}}", align="C")

    pdf = _Pdf(format="A4")
    pdf.set_margins(16, 16, 16)
    pdf.set_auto_page_break(True, margin=18)
    # One face only: a CJK font rarely has bold or italic faces, and each add_font parses the whole
    # font file again (~2 s for a 5 MB .ttc). So emphasis is shown by colour (tag_styles below) and
    # header cells are plain cells.
    pdf.add_font(FAMILY, "", str(font_path))
    pdf.set_title(doc.title or "report")
    pdf.set_lang("zh-CN" if doc.zh else "en")
    pdf.set_creator("Shoal report engine")
    covered = set(pdf.fonts[FAMILY].cmap)
    fallback = next((f for f in FALLBACK if Path(f).is_file()), None)
    if fallback:
        pdf.add_font("shoalsymbols", "", fallback)
        covered |= set(pdf.fonts["shoalsymbols"].cmap)
        pdf.set_fallback_fonts(["shoalsymbols"])
    pdf.add_page()
    pdf.set_font(FAMILY, size=10.5)
    # characters no font has (emoji from posts) are dropped rather than drawn as empty boxes
    text = "".join(ch for ch in pdf_html(doc) if ord(ch) < 128 or ord(ch) in covered)
    pdf.write_html(text, font_family=FAMILY, tag_styles=_tag_styles())
    return bytes(pdf.output())


def pdf_path(html_path: str | Path) -> Path:
    """Where a report's PDF goes: beside its HTML file, same name."""
    return Path(html_path).with_suffix(".pdf")


def document_pdf(json_path: str | Path, font: str | Path | None = None) -> bytes:
    """The PDF of a written report, from its JSON document file."""
    return render_pdf(ReportDocument.from_json(Path(json_path).read_text(encoding="utf-8")), font)


def export_pdf(json_path: str | Path, out: str | Path, font: str | Path | None = None) -> Path:
    """Write the report's PDF to `out` (a temporary file first, then moved into place)."""
    data = document_pdf(json_path, font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
