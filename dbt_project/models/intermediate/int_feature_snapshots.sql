-- Snapshot spine of the ml feature tables (one row per event_timestamp):
-- cutoff + k * feature_snapshot_days for any integer k, after the first
-- event day and not after the day after the newest event, plus the day
-- after the newest event.

with

calendar as (

    select
        first_event_date,
        last_event_date,
        cutoff_date
    from {{ ref('int_event_calendar') }}

),

candidate_days as (

    -- every day in (first event day, newest event day + 1]
    select
        calendar.cutoff_date,
        calendar.last_event_date,
        cast(
            calendar.first_event_date + cast(day_offsets.n as integer)
            as date
        ) as snapshot_date
    from calendar
    cross join generate_series(
        1, calendar.last_event_date - calendar.first_event_date + 1
    ) as day_offsets (n)

)

select cast(snapshot_date as timestamp) as event_timestamp
from candidate_days
where
    (snapshot_date - cutoff_date) % {{ var('feature_snapshot_days') | int }}
    = 0
    or snapshot_date = last_event_date + 1
