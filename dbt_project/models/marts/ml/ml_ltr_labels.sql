-- Grain: (user_id, item_id, event_timestamp). Purchases of each pair in
-- label_windows windows of label_window_days days ending at the cutoff;
-- window w covers [cutoff - (w + 1) * L, cutoff - w * L) and
-- event_timestamp is the window start.

with

calendar as (

    select cast(cutoff_date as timestamp) as cutoff_at
    from {{ ref('int_event_calendar') }}

),

label_windows as (

    select
        calendar.cutoff_at
        - interval '{{ var("label_window_days") | int }} days'
        * (window_numbers.w + 1) as window_start_at,
        calendar.cutoff_at
        - interval '{{ var("label_window_days") | int }} days'
        * window_numbers.w as window_end_at
    from calendar
    cross join
        generate_series(
            0, {{ var("label_windows") | int }} - 1
        ) as window_numbers (w)

),

purchases as (

    select
        user_id,
        item_id,
        event_at
    from {{ ref('fct_interactions') }}
    where event_type = 'purchase'

),

labels as (

    select
        purchases.user_id,
        purchases.item_id,
        label_windows.window_start_at as event_timestamp,
        count(*) as count_purchases
    from purchases
    inner join label_windows
        on
            purchases.event_at >= label_windows.window_start_at
            and purchases.event_at < label_windows.window_end_at
    group by
        purchases.user_id,
        purchases.item_id,
        label_windows.window_start_at

)

select
    cast(user_id as text) as user_id,
    cast(item_id as text) as item_id,
    cast(event_timestamp as timestamp) as event_timestamp,
    cast(count_purchases as bigint) as count_purchases,
    cast(
        case
            when count_purchases >= 4 then 3
            when count_purchases >= 2 then 2
            else 1
        end as integer
    ) as relevance
from labels
