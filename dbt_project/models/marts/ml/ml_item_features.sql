-- Grain: (item_id, event_timestamp). Items with any event in the 90 days
-- before the snapshot; popularity counts every purchase line, anonymous
-- ones included. Only events strictly before event_timestamp count, and the
-- catalogue only as far as it was loaded before it.
--
-- Snapshots are midnights, so an event counts in a window exactly when its
-- day does: the events are first reduced to one row per item and day (per
-- buyer, per price), and only those rows meet the snapshots of the 90 days
-- after them (joining the events themselves copied each event per snapshot).

with

snapshots as (

    select event_timestamp
    from {{ ref('int_feature_snapshots') }}

),

events as (

    select
        item_id,
        user_id,
        event_type,
        price_amount,
        cast(cast(event_at as date) as timestamp) as event_day
    from {{ ref('stg_raw__events') }}

),

catalogue as (

    select
        item_id,
        price_amount,
        first_ingested_at
    from {{ ref('stg_raw__items') }}

),

daily_counts as (

    -- every item with an event that day, whatever its type
    select
        item_id,
        event_day,
        count(case when event_type = 'purchase' then 1 end)
            as count_purchases,
        count(case when event_type = 'view' then 1 end) as count_views,
        count(case when event_type = 'return' then 1 end) as count_returns
    from events
    group by item_id, event_day

),

daily_buyers as (

    select distinct
        item_id,
        user_id,
        event_day
    from events
    where event_type = 'purchase' and user_id is not null

),

daily_prices as (

    select
        item_id,
        event_day,
        price_amount,
        count(*) as count_lines
    from events
    where price_amount > 0
    group by item_id, event_day, price_amount

),

window_counts as (

    select
        daily_counts.item_id,
        snapshots.event_timestamp,
        {{ sum_over_last_days(
            'daily_counts.count_purchases',
            'daily_counts.event_day',
            'snapshots.event_timestamp',
            7
        ) }} as count_purchases_7d,
        {{ sum_over_last_days(
            'daily_counts.count_purchases',
            'daily_counts.event_day',
            'snapshots.event_timestamp',
            30
        ) }} as count_purchases_30d,
        sum(daily_counts.count_purchases) as count_purchases_90d,
        {{ sum_over_last_days(
            'daily_counts.count_views',
            'daily_counts.event_day',
            'snapshots.event_timestamp',
            30
        ) }} as count_views_30d,
        sum(daily_counts.count_returns) as count_returns_90d
    from snapshots
    inner join daily_counts
        on {{ in_days_before(
            'daily_counts.event_day', 'snapshots.event_timestamp', 90
        ) }}
    group by daily_counts.item_id, snapshots.event_timestamp

),

window_buyers as (

    select
        daily_buyers.item_id,
        snapshots.event_timestamp,
        count(
            distinct case
                when
                    daily_buyers.event_day
                    >= snapshots.event_timestamp - interval '30 days'
                    then daily_buyers.user_id
            end
        ) as count_buyers_30d,
        count(distinct daily_buyers.user_id) as count_buyers_90d
    from snapshots
    inner join daily_buyers
        on {{ in_days_before(
            'daily_buyers.event_day', 'snapshots.event_timestamp', 90
        ) }}
    group by daily_buyers.item_id, snapshots.event_timestamp

),

window_prices as (

    select
        daily_prices.item_id,
        snapshots.event_timestamp,
        daily_prices.price_amount,
        sum(daily_prices.count_lines) as count_lines
    from snapshots
    inner join daily_prices
        on {{ in_days_before(
            'daily_prices.event_day', 'snapshots.event_timestamp', 90
        ) }}
    group by
        daily_prices.item_id,
        snapshots.event_timestamp,
        daily_prices.price_amount

),

cumulative_prices as (

    select
        item_id,
        event_timestamp,
        price_amount,
        sum(count_lines) over item_prices as lines_up_to,
        sum(count_lines) over (partition by item_id, event_timestamp)
            as total_lines
    from window_prices
    window item_prices as (
        partition by item_id, event_timestamp
        order by price_amount
        rows between unbounded preceding and current row
    )

),

median_prices as (

    -- percentile_cont(0.5) of the window's price lines: the lines at
    -- 0-based positions floor((n - 1) / 2) and ceil((n - 1) / 2) of the
    -- sorted prices, interpolated as both engines do (lo + (hi - lo) / 2);
    -- the line at position p has the first price with more than p lines up
    -- to it
    select
        item_id,
        event_timestamp,
        min(
            case
                when
                    lines_up_to
                    > floor(cast(total_lines - 1 as double precision) / 2)
                    then price_amount
            end
        ) as low_price_amount,
        min(
            case
                when
                    lines_up_to
                    > ceil(cast(total_lines - 1 as double precision) / 2)
                    then price_amount
            end
        ) as high_price_amount
    from cumulative_prices
    group by item_id, event_timestamp

),

window_features as (

    select
        window_counts.*,
        coalesce(window_buyers.count_buyers_30d, 0) as count_buyers_30d,
        coalesce(window_buyers.count_buyers_90d, 0) as count_buyers_90d,
        median_prices.low_price_amount
        + (median_prices.high_price_amount - median_prices.low_price_amount)
        * 0.5 as median_price_amount_90d
    from window_counts
    left join window_buyers
        on
            window_counts.item_id = window_buyers.item_id
            and window_counts.event_timestamp = window_buyers.event_timestamp
    left join median_prices
        on
            window_counts.item_id = median_prices.item_id
            and window_counts.event_timestamp = median_prices.event_timestamp

),

item_features as (

    select
        window_features.*,
        -- recent daily purchase rate over the 30-day rate, smoothed; in
        -- double precision on both engines (no numeric on PostgreSQL)
        (
            cast(window_features.count_purchases_7d as double precision) / 7
            + 0.1
        )
        / (
            cast(window_features.count_purchases_30d as double precision)
            / 30
            + 0.1
        ) as trend_ratio,
        -- point in time: the median price paid in the 90 days before the
        -- snapshot; the catalogue's price only when the catalogue row was
        -- loaded before the snapshot (a derived catalogue, e.g. Online
        -- Retail's whole-file median, is loaded after every past snapshot)
        coalesce(
            window_features.median_price_amount_90d,
            case
                when
                    catalogue.first_ingested_at
                    < window_features.event_timestamp
                    then catalogue.price_amount
            end
        ) as price_amount,
        -- capped at 1: a UCI cancellation may undo a purchase older than
        -- the 90 days, so returns can outnumber the window's purchases
        case
            when window_features.count_purchases_90d > 0
                then
                    least(
                        cast(
                            window_features.count_returns_90d
                            as double precision
                        )
                        / window_features.count_purchases_90d,
                        1.0
                    )
        end as return_rate_90d
    from window_features
    left join catalogue
        on window_features.item_id = catalogue.item_id

)

select
    cast(item_id as text) as item_id,
    cast(event_timestamp as timestamp) as event_timestamp,
    cast(count_purchases_7d as bigint) as count_purchases_7d,
    cast(count_purchases_30d as bigint) as count_purchases_30d,
    cast(count_purchases_90d as bigint) as count_purchases_90d,
    cast(count_buyers_30d as bigint) as count_buyers_30d,
    cast(count_buyers_90d as bigint) as count_buyers_90d,
    cast(count_views_30d as bigint) as count_views_30d,
    cast(trend_ratio as double precision) as trend_ratio,
    cast(price_amount as double precision) as price_amount,
    cast(count_returns_90d as bigint) as count_returns_90d,
    cast(return_rate_90d as double precision) as return_rate_90d
from item_features
