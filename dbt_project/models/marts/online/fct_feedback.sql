-- One row per feedback event posted to the API (grain: event_id), with
-- what it is attributed to: the served item of the same request id, if the
-- event came within the attribution window after it was served.

with

feedback as (

    select
        event_id,
        user_id,
        item_id,
        event_type,
        event_at,
        request_id,
        served_rank,
        quantity,
        price_amount
    from {{ ref('stg_raw__events') }}
    where source = 'feedback'

),

served as (

    select
        request_id,
        served_rank,
        item_id,
        served_at,
        model_version,
        variant
    from {{ ref('fct_served_items') }}

),

matched as (

    select
        feedback.*,
        served.served_at,
        served.model_version,
        served.variant,
        row_number() over (
            partition by feedback.event_id
            order by served.served_rank
        ) as match_rank
    from feedback
    left join served
        on
            feedback.request_id = served.request_id
            and feedback.item_id = served.item_id
            and feedback.event_at >= served.served_at
            and feedback.event_at < served.served_at
            + interval '{{ var("attribution_window_hours") | int }} hours'

)

select
    cast(event_id as text) as event_id,
    cast(user_id as text) as user_id,
    cast(item_id as text) as item_id,
    cast(event_type as text) as event_type,
    cast(event_at as timestamp) as event_at,
    cast(request_id as text) as request_id,
    cast(served_rank as integer) as served_rank,
    cast(model_version as text) as model_version,
    cast(variant as text) as variant,
    cast(served_at as timestamp) as served_at,
    cast(served_at is not null as boolean) as is_attributed,
    cast(
        coalesce(quantity, 1) * coalesce(price_amount, 0) as double precision
    ) as revenue_amount
from matched
where match_rank = 1
