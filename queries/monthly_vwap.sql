-- Monthly VWAP per symbol: the volume-weighted average price sum(close * volume) / sum(volume)
-- of each calendar month's daily bars, with the month's trading days and total volume.
SELECT
    symbol,
    CAST(date_trunc('month', trade_date) AS DATE) AS month_start,
    count(*) AS trading_days,
    sum(close * volume) / sum(volume) AS vwap,
    sum(volume) AS total_volume
FROM ticks
WHERE volume > 0 AND close IS NOT NULL
GROUP BY symbol, CAST(date_trunc('month', trade_date) AS DATE)
ORDER BY symbol, month_start;
