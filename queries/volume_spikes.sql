-- Volume spikes: days a symbol traded more than three times its average daily volume of the
-- previous 20 trading days, with that average and the ratio.
WITH volumes AS (
    SELECT
        symbol,
        trade_date,
        volume,
        avg(CAST(volume AS DOUBLE)) OVER (
            PARTITION BY symbol ORDER BY event_time ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING
        ) AS avg_prev_20,
        count(volume) OVER (
            PARTITION BY symbol ORDER BY event_time ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING
        ) AS days_before
    FROM ticks
)
SELECT symbol, trade_date, volume, avg_prev_20, volume / avg_prev_20 AS spike_ratio
FROM volumes
WHERE days_before = 20 AND volume > 3 * avg_prev_20
ORDER BY symbol, trade_date;
