-- 20- and 50-day moving averages of the adjusted close per symbol, and the days the 20-day
-- average crosses the 50-day one: 'golden' when it crosses above, 'death' when below. The
-- averages are compared at 6 decimals: two averages of one flat price are equal, whatever
-- rounding each engine's running sum left in the last bits.
WITH averages AS (
    SELECT
        symbol,
        trade_date,
        event_time,
        COALESCE(adj_close, close) AS price,
        avg(COALESCE(adj_close, close)) OVER (
            PARTITION BY symbol ORDER BY event_time ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS ma20,
        avg(COALESCE(adj_close, close)) OVER (
            PARTITION BY symbol ORDER BY event_time ROWS BETWEEN 49 PRECEDING AND CURRENT ROW
        ) AS ma50,
        row_number() OVER (PARTITION BY symbol ORDER BY event_time) AS day_number
    FROM ticks
),
sides AS (
    SELECT
        symbol,
        trade_date,
        event_time,
        price,
        ma20,
        ma50,
        CASE WHEN round(ma20, 6) > round(ma50, 6) THEN 1 ELSE -1 END AS side
    FROM averages
    WHERE day_number >= 50
),
flips AS (
    SELECT
        symbol,
        trade_date,
        price,
        ma20,
        ma50,
        side,
        lag(side) OVER (PARTITION BY symbol ORDER BY event_time) AS prev_side
    FROM sides
)
SELECT
    symbol,
    trade_date,
    price,
    ma20,
    ma50,
    CASE WHEN side = 1 THEN 'golden' ELSE 'death' END AS cross_kind
FROM flips
WHERE prev_side IS NOT NULL AND side <> prev_side
ORDER BY symbol, trade_date;
