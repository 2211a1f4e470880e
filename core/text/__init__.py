"""Text, one module per concept:

    clean         the one cleaner of post text (Weibo markup, URLs, mentions, zero-width characters)
    jieba_loader  the one jieba loader (lazy, thread-safe)
    stopwords     the one stopword list (FUNCTION_WORDS for search, STOPWORDS for keywords)
    dates         the one date parser (parse_time, parse_date)
    keywords      sentences, keywords, ranking for the offline analyst
    sentiment     the offline sentiment model (+ assets/sentiment_model.json.gz)
    dedup         near-duplicate detection
"""
