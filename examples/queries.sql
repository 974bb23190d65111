-- Ten questions analysts ask newsflow every day, and the queries that answer them.
--
-- Connect as the read-only role (docs/analysts.md), e.g.
--     psql "postgresql://newsflow_analyst@dbhost/newsflow" -f examples/queries.sql
-- Each query reads the views from sql/003_analyst.sql; change the names, words and dates.
-- tests/test_analyst.py runs every one against the sample site and the seed article.

-- 1. Who is quoted most, and how much of it is verbatim?
SELECT speaker,
       sum(statements)                                   AS statements,
       sum(articles)                                     AS articles,
       round(100.0 * sum(direct) / sum(statements))      AS pct_direct
FROM v_speaker_daily
WHERE speaker_entity_id IS NOT NULL
GROUP BY speaker
ORDER BY statements DESC, speaker
LIMIT 20;

-- 2. Everything Dmitry Peskov said, newest first, with the article to cite.
SELECT day, kind, cue, quote, article_title, article_url
FROM v_statements
WHERE speaker = 'Dmitry Peskov'
ORDER BY dated_at DESC, quote_start;

-- 3. Who said something about elections, and what exactly?
SELECT day, speaker, kind, quote, article_url
FROM v_statements
WHERE quote_tsv @@ websearch_to_tsquery('english', 'elections')
ORDER BY dated_at DESC, ts_rank(quote_tsv, websearch_to_tsquery('english', 'elections')) DESC;

-- 4. Which articles are about sanctions or tankers, best match first?
SELECT day, title, url,
       round(ts_rank(search_tsv, websearch_to_tsquery('english', 'sanctions or tankers'))::numeric, 3) AS rank
FROM v_articles
WHERE search_tsv @@ websearch_to_tsquery('english', 'sanctions or tankers')
ORDER BY rank DESC, dated_at DESC;

-- 5. Who and what is named alongside Katrin Leppik, and how often?
SELECT CASE WHEN entity_a = 'Katrin Leppik' THEN entity_b ELSE entity_a END AS named_with,
       CASE WHEN entity_a = 'Katrin Leppik' THEN label_b ELSE label_a END   AS label,
       count(*)                                                              AS articles,
       max(day)                                                              AS last_day
FROM v_comentions
WHERE 'Katrin Leppik' IN (entity_a, entity_b)
GROUP BY 1, 2
ORDER BY articles DESC, named_with;

-- 6. What was in the news each day: the three entities mentioned most.
SELECT day, entity, label, mentions
FROM (
    SELECT day, entity, label, mentions,
           row_number() OVER (PARTITION BY day ORDER BY mentions DESC, articles DESC, entity) AS place
    FROM v_entity_daily
) ranked
WHERE place <= 3
ORDER BY day DESC, place;

-- 7. Which organisations (not people) are quoted, and saying what?
SELECT day, speaker, kind, quote, article_title
FROM v_statements
WHERE speaker_label = 'ORG'
ORDER BY dated_at DESC, speaker;

-- 8. Which statements have no identified speaker? (Worth a look before quoting them.)
SELECT day, coalesce(speaker_mention, speaker, '(nobody)') AS attributed_to, kind, quote, article_url
FROM v_statements
WHERE speaker_entity_id IS NULL
ORDER BY dated_at DESC, article_id, quote_start;

-- 9. How much does each feed bring in per month?
SELECT date_trunc('month', day)::date       AS month,
       feed_title,
       count(*)                             AS articles,
       sum(statements)                      AS statements,
       round(avg(word_count))               AS avg_words
FROM v_articles
GROUP BY 1, 2
ORDER BY month DESC, articles DESC;

-- 10. Which feeds are losing items, and why?
SELECT h.feed_title, h.feed_url, h.status, h.items, h.quarantined, h.quarantine_rate,
       q.reason, count(q.item_id) AS items_with_reason, max(q.message) AS example_message
FROM v_feed_health h
JOIN v_quarantine q ON q.feed_id = h.feed_id
GROUP BY h.feed_id, h.feed_title, h.feed_url, h.status, h.items, h.quarantined, h.quarantine_rate, q.reason
ORDER BY h.quarantine_rate DESC, items_with_reason DESC;
