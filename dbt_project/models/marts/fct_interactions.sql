-- One row per distinct interaction of a known (pseudonymised) user.

with

events as (

    select
        event_id,
        user_id,
        item_id,
        event_type,
        event_at,
        session_id,
        quantity,
        price_amount,
        order_id,
        source
    from {{ ref('stg_raw__events') }}
    where user_id is not null

)

select
    cast(event_id as text) as event_id,
    cast(user_id as text) as user_id,
    cast(item_id as text) as item_id,
    cast(event_type as text) as event_type,
    cast(event_at as timestamp) as event_at,
    cast(session_id as text) as session_id,
    cast(quantity as double precision) as quantity,
    cast(price_amount as double precision) as price_amount,
    cast(order_id as text) as order_id,
    cast(source as text) as source
from events
