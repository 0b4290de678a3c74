-- Maximum drawdown per symbol: the largest fall of the adjusted close from an earlier peak,
-- with the peak day and price, the trough day and price, and the fall as a fraction.
WITH peaks AS (
    SELECT
        symbol,
        trade_date,
        event_time,
        COALESCE(adj_close, close) AS price,
        max(COALESCE(adj_close, close)) OVER (
            PARTITION BY symbol ORDER BY event_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS peak
    FROM ticks
),
ranked AS (
    SELECT
        symbol,
        trade_date,
        price,
        peak,
        price / peak - 1 AS drawdown,
        row_number() OVER (PARTITION BY symbol ORDER BY price / peak - 1, event_time) AS depth_rank
    FROM peaks
    WHERE price IS NOT NULL
),
worst AS (
    SELECT symbol, trade_date AS trough_day, price AS trough_price, peak AS peak_price, drawdown
    FROM ranked
    WHERE depth_rank = 1
)
SELECT
    w.symbol,
    max(p.trade_date) AS peak_day,
    w.peak_price,
    w.trough_day,
    w.trough_price,
    w.drawdown AS max_drawdown
FROM worst w
JOIN peaks p
    ON p.symbol = w.symbol AND p.trade_date <= w.trough_day AND p.price = w.peak_price
GROUP BY w.symbol, w.peak_price, w.trough_day, w.trough_price, w.drawdown
ORDER BY w.symbol;
