-- Grain: (user_id, event_timestamp). Users with any event in the 90 days
-- before the snapshot; every feature uses only events strictly before
-- event_timestamp (point-in-time correct).
--
-- Snapshots are midnights, so an event counts in a window exactly when its
-- day does: the interactions are first reduced to one row per user and day
-- (per purchased item and order), and only those rows meet the snapshots of
-- the 90 days after them (joining the events themselves copied each event
-- per snapshot).

with

snapshots as (

    select event_timestamp
    from {{ ref('int_feature_snapshots') }}

),

interactions as (

    select
        event_id,
        user_id,
        item_id,
        event_type,
        event_at,
        order_id,
        cast(cast(event_at as date) as timestamp) as event_day,
        case
            when event_type = 'purchase'
                then coalesce(quantity, 1) * coalesce(price_amount, 0)
        end as purchase_amount
    from {{ ref('fct_interactions') }}

),

daily_counts as (

    -- every user with an event that day, whatever its type
    select
        user_id,
        event_day,
        count(case when event_type = 'purchase' then 1 end)
            as count_purchases,
        count(case when event_type = 'view' then 1 end) as count_views,
        count(case when event_type = 'return' then 1 end) as count_returns,
        sum(purchase_amount) as spend_amount
    from interactions
    group by user_id, event_day

),

daily_purchases as (

    select distinct
        user_id,
        event_day,
        item_id,
        coalesce(order_id, event_id) as order_key
    from interactions
    where event_type = 'purchase'

),

window_counts as (

    select
        daily_counts.user_id,
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
            'daily_counts.spend_amount',
            'daily_counts.event_day',
            'snapshots.event_timestamp',
            7
        ) }} as spend_amount_7d,
        {{ sum_over_last_days(
            'daily_counts.spend_amount',
            'daily_counts.event_day',
            'snapshots.event_timestamp',
            30
        ) }} as spend_amount_30d,
        coalesce(sum(daily_counts.spend_amount), 0) as spend_amount_90d,
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
    group by daily_counts.user_id, snapshots.event_timestamp

),

window_purchases as (

    select
        daily_purchases.user_id,
        snapshots.event_timestamp,
        count(distinct daily_purchases.order_key) as count_orders_90d,
        count(distinct daily_purchases.item_id) as count_distinct_items_90d
    from snapshots
    inner join daily_purchases
        on {{ in_days_before(
            'daily_purchases.event_day', 'snapshots.event_timestamp', 90
        ) }}
    group by daily_purchases.user_id, snapshots.event_timestamp

),

window_features as (

    select
        window_counts.*,
        coalesce(window_purchases.count_orders_90d, 0) as count_orders_90d,
        coalesce(window_purchases.count_distinct_items_90d, 0)
            as count_distinct_items_90d
    from window_counts
    left join window_purchases
        on
            window_counts.user_id = window_purchases.user_id
            and window_counts.event_timestamp
            = window_purchases.event_timestamp

),

daily_last_purchases as (

    select
        user_id,
        max(event_at) as last_purchase_at
    from interactions
    where event_type = 'purchase'
    group by user_id, cast(event_at as date)

),

last_purchases as (

    -- the last purchase before the snapshot, however long ago
    select
        window_features.user_id,
        window_features.event_timestamp,
        max(daily_last_purchases.last_purchase_at) as last_purchase_at
    from window_features
    inner join daily_last_purchases
        on
            window_features.user_id = daily_last_purchases.user_id
            and window_features.event_timestamp
            > daily_last_purchases.last_purchase_at
    group by window_features.user_id, window_features.event_timestamp

)

select
    cast(window_features.user_id as text) as user_id,
    cast(window_features.event_timestamp as timestamp) as event_timestamp,
    cast(window_features.count_purchases_7d as bigint) as count_purchases_7d,
    cast(window_features.count_purchases_30d as bigint)
        as count_purchases_30d,
    cast(window_features.count_purchases_90d as bigint)
        as count_purchases_90d,
    cast(window_features.count_orders_90d as bigint) as count_orders_90d,
    cast(window_features.spend_amount_7d as double precision)
        as spend_amount_7d,
    cast(window_features.spend_amount_30d as double precision)
        as spend_amount_30d,
    cast(window_features.spend_amount_90d as double precision)
        as spend_amount_90d,
    cast(window_features.count_distinct_items_90d as bigint)
        as count_distinct_items_90d,
    cast(window_features.count_views_30d as bigint) as count_views_30d,
    cast(window_features.count_returns_90d as bigint) as count_returns_90d,
    cast(
        cast(window_features.event_timestamp as date)
        - cast(last_purchases.last_purchase_at as date)
        as double precision
    ) as days_since_last_purchase
from window_features
left join last_purchases
    on
        window_features.user_id = last_purchases.user_id
        and window_features.event_timestamp = last_purchases.event_timestamp
