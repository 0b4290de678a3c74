-- Top movers per day: on each trading day, the symbol whose adjusted close moved most against
-- its previous trading day (largest absolute daily return), with its return and how many
-- symbols traded that day.
WITH returns AS (
    SELECT
        symbol,
        trade_date,
        COALESCE(adj_close, close)
            / lag(COALESCE(adj_close, close)) OVER (PARTITION BY symbol ORDER BY event_time)
            - 1 AS daily_return
    FROM ticks
),
ranked AS (
    SELECT
        symbol,
        trade_date,
        daily_return,
        row_number() OVER (
            PARTITION BY trade_date ORDER BY abs(daily_return) DESC, symbol
        ) AS mover_rank,
        count(*) OVER (PARTITION BY trade_date) AS symbols_that_day
    FROM returns
    WHERE daily_return IS NOT NULL
)
SELECT trade_date, symbol, daily_return, symbols_that_day
FROM ranked
WHERE mover_rank = 1
ORDER BY trade_date, symbol;
