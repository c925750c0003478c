-- Online metrics per day served, model version and variant: what was shown
-- and what shoppers did with it (attributed feedback).

with

served as (

    select
        served_date,
        model_version,
        variant,
        count(*) as count_impressions,
        count(distinct request_id) as count_requests,
        count(
            distinct case when response_kind != 'personal' then request_id end
        ) as count_fallback_requests,
        count(distinct item_id) as count_distinct_items
    from {{ ref('fct_served_items') }}
    group by served_date, model_version, variant

),

feedback as (

    select
        cast(served_at as date) as served_date,
        model_version,
        variant,
        {{ count_distinct_served('click') }} as count_clicks,
        {{ count_distinct_served('add_to_cart') }} as count_add_to_carts,
        {{ count_distinct_served('purchase') }} as count_purchases,
        {{ count_distinct_served('impression') }} as count_seen,
        sum(
            case when event_type = 'purchase' then revenue_amount else 0 end
        ) as revenue_amount
    from {{ ref('fct_feedback') }}
    where is_attributed
    group by cast(served_at as date), model_version, variant

),

catalogue as (

    select count(*) as count_items
    from {{ ref('dim_items') }}

)

select
    cast(served.served_date as date) as served_date,
    cast(served.model_version as text) as model_version,
    cast(served.variant as text) as variant,
    cast(served.count_requests as bigint) as count_requests,
    cast(served.count_impressions as bigint) as count_impressions,
    cast(served.count_fallback_requests as bigint) as count_fallback_requests,
    cast(coalesce(feedback.count_seen, 0) as bigint) as count_seen,
    cast(coalesce(feedback.count_clicks, 0) as bigint) as count_clicks,
    cast(
        coalesce(feedback.count_add_to_carts, 0) as bigint
    ) as count_add_to_carts,
    cast(coalesce(feedback.count_purchases, 0) as bigint) as count_purchases,
    cast(
        coalesce(feedback.revenue_amount, 0) as double precision
    ) as revenue_amount,
    cast(
        coalesce(feedback.count_clicks, 0) * 1.0 / served.count_impressions
        as double precision
    ) as ctr_rate,
    cast(
        coalesce(feedback.count_add_to_carts, 0)
        * 1.0 / served.count_impressions as double precision
    ) as add_to_cart_rate,
    cast(
        coalesce(feedback.count_purchases, 0)
        * 1.0 / served.count_impressions as double precision
    ) as conversion_rate,
    cast(
        1000.0 * coalesce(feedback.revenue_amount, 0)
        / served.count_impressions as double precision
    ) as revenue_per_mille_amount,
    cast(
        served.count_distinct_items * 1.0
        / nullif(catalogue.count_items, 0) as double precision
    ) as coverage_rate,
    cast(
        served.count_fallback_requests * 1.0 / served.count_requests
        as double precision
    ) as fallback_share_rate
from served
cross join catalogue
left join feedback
    on
        served.served_date = feedback.served_date
        and served.model_version = feedback.model_version
        and served.variant = feedback.variant
