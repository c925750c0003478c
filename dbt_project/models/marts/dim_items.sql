-- One row per item seen in the events (with or without a user) or in the
-- catalogue.

with

events as (

    select
        item_id,
        user_id,
        event_type,
        event_at,
        price_amount
    from {{ ref('stg_raw__events') }}

),

catalogue as (

    select
        item_id,
        title,
        description,
        category,
        brand,
        price_amount,
        first_ingested_at
    from {{ ref('stg_raw__items') }}

),

event_stats as (

    select
        item_id,
        min(event_at) as first_event_at,
        -- all purchase lines, anonymous ones included
        count(
            case when event_type = 'purchase' then 1 end
        ) as count_purchases,
        count(
            distinct case when event_type = 'purchase' then user_id end
        ) as count_buyers,
        percentile_cont(0.5) within group (
            order by case when price_amount > 0 then price_amount end
        ) as median_price_amount
    from events
    group by item_id

),

all_items as (

    select item_id from event_stats
    union
    select item_id from catalogue

),

joined as (

    select
        all_items.item_id,
        catalogue.title,
        catalogue.description,
        catalogue.category,
        catalogue.brand,
        coalesce(
            catalogue.price_amount, event_stats.median_price_amount
        ) as price_amount,
        lower(
            concat_ws(
                ' ',
                catalogue.title,
                catalogue.description,
                catalogue.category,
                catalogue.brand
            )
        ) as item_text,
        coalesce(
            event_stats.first_event_at, catalogue.first_ingested_at
        ) as first_seen_at,
        coalesce(event_stats.count_purchases, 0) as count_purchases,
        coalesce(event_stats.count_buyers, 0) as count_buyers
    from all_items
    left join event_stats
        on all_items.item_id = event_stats.item_id
    left join catalogue
        on all_items.item_id = catalogue.item_id

)

select
    cast(item_id as text) as item_id,
    cast(title as text) as title,
    cast(description as text) as description,
    cast(category as text) as category,
    cast(brand as text) as brand,
    cast(price_amount as double precision) as price_amount,
    cast(item_text as text) as item_text,
    cast(first_seen_at as timestamp) as first_seen_at,
    cast(count_purchases as bigint) as count_purchases,
    cast(count_buyers as bigint) as count_buyers
from joined
