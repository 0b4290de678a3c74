-- Daily returns per symbol: each day's adjusted close (the close when there is no adjusted
-- one) against the previous trading day's, as a fraction (0.01 = +1 %).
WITH prices AS (
    SELECT
        symbol,
        trade_date,
        COALESCE(adj_close, close) AS price,
        lag(COALESCE(adj_close, close)) OVER (PARTITION BY symbol ORDER BY event_time) AS prev_price
    FROM ticks
)
SELECT symbol, trade_date, price, price / prev_price - 1 AS daily_return
FROM prices
WHERE prev_price IS NOT NULL
ORDER BY symbol, trade_date;
