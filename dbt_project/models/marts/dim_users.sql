-- One row per (pseudonymised) user of fct_interactions.

with

interactions as (

    select
        event_id,
        user_id,
        event_type,
        event_at,
        order_id,
        case
            when event_type = 'purchase'
                then coalesce(quantity, 1) * coalesce(price_amount, 0)
        end as purchase_amount
    from {{ ref('fct_interactions') }}

),

users as (

    select
        user_id,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        count(
            case when event_type = 'purchase' then 1 end
        ) as count_purchases,
        -- a purchase line without an order id is an order of its own
        count(
            distinct case
                when event_type = 'purchase'
                    then coalesce(order_id, event_id)
            end
        ) as count_orders,
        coalesce(sum(purchase_amount), 0) as spend_amount
    from interactions
    group by user_id

)

select
    cast(user_id as text) as user_id,
    cast(first_event_at as timestamp) as first_event_at,
    cast(last_event_at as timestamp) as last_event_at,
    cast(count_purchases as bigint) as count_purchases,
    cast(count_orders as bigint) as count_orders,
    cast(spend_amount as double precision) as spend_amount
from users
