-- Volatility per symbol and year: the sample standard deviation of daily returns of the
-- adjusted close, and the same annualised over 252 trading days.
WITH returns AS (
    SELECT
        symbol,
        trade_date,
        COALESCE(adj_close, close)
            / lag(COALESCE(adj_close, close)) OVER (PARTITION BY symbol ORDER BY event_time)
            - 1 AS daily_return
    FROM ticks
)
SELECT
    symbol,
    EXTRACT(YEAR FROM trade_date) AS trade_year,
    count(*) AS trading_days,
    stddev_samp(daily_return) AS daily_volatility,
    stddev_samp(daily_return) * sqrt(252) AS annual_volatility
FROM returns
WHERE daily_return IS NOT NULL
GROUP BY symbol, EXTRACT(YEAR FROM trade_date)
ORDER BY symbol, trade_year;
