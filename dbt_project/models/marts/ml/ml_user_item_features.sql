-- Grain: (user_id, item_id, event_timestamp). One row per pair and day on
-- which the pair had any event; event_timestamp is the next midnight and
-- the counts are cumulative over all events strictly before it.

with

interactions as (

    select
        user_id,
        item_id,
        event_type,
        event_at
    from {{ ref('fct_interactions') }}

),

daily as (

    select
        user_id,
        item_id,
        cast(event_at as date) as event_date,
        count(
            case when event_type = 'purchase' then 1 end
        ) as count_purchases,
        count(case when event_type = 'view' then 1 end) as count_views,
        count(
            case when event_type = 'add_to_cart' then 1 end
        ) as count_carts,
        count(case when event_type = 'click' then 1 end) as count_clicks,
        max(case when event_type = 'click' then event_at end) as last_click_at,
        min(
            case when event_type = 'purchase' then event_at end
        ) as first_purchase_at,
        max(
            case when event_type = 'purchase' then event_at end
        ) as last_purchase_at
    from interactions
    group by user_id, item_id, cast(event_at as date)

),

cumulative as (

    select
        user_id,
        item_id,
        cast(event_date as timestamp) + interval '1 day' as event_timestamp,
        sum(count_purchases) over pair_history as count_purchases,
        sum(count_views) over pair_history as count_views,
        sum(count_carts) over pair_history as count_carts,
        sum(count_clicks) over pair_history as count_clicks,
        max(last_click_at) over pair_history as last_click_at,
        min(first_purchase_at) over pair_history as first_purchase_at,
        max(last_purchase_at) over pair_history as last_purchase_at
    from daily
    window pair_history as (
        partition by user_id, item_id
        order by event_date
        rows between unbounded preceding and current row
    )

)

select
    cast(user_id as text) as user_id,
    cast(item_id as text) as item_id,
    cast(event_timestamp as timestamp) as event_timestamp,
    cast(count_purchases as bigint) as count_purchases,
    cast(count_views as bigint) as count_views,
    cast(count_carts as bigint) as count_carts,
    cast(count_clicks as bigint) as count_clicks,
    cast(last_click_at as timestamp) as last_click_at,
    cast(first_purchase_at as timestamp) as first_purchase_at,
    cast(last_purchase_at as timestamp) as last_purchase_at
from cumulative
