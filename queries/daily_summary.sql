-- Daily summary per symbol: how many trading days, first and last day, lowest low and highest
-- high, average close, average daily range (high - low) as a share of the close, up days
-- (close above open), and average and total daily volume.
SELECT
    symbol,
    count(*) AS trading_days,
    min(trade_date) AS first_day,
    max(trade_date) AS last_day,
    min(low) AS min_low,
    max(high) AS max_high,
    avg(close) AS avg_close,
    avg((high - low) / close) AS avg_range_pct,
    sum(CASE WHEN close > open THEN 1 ELSE 0 END) AS up_days,
    avg(CAST(volume AS DOUBLE)) AS avg_volume,
    sum(volume) AS total_volume
FROM ticks
GROUP BY symbol
ORDER BY symbol;
