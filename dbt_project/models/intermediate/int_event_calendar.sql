-- One row: the day span of the events and the time split (var cutoff).

with

event_span as (

    select
        cast(min(event_at) as date) as first_event_date,
        cast(max(event_at) as date) as last_event_date
    from {{ ref('stg_raw__events') }}

)

select
    first_event_date,
    last_event_date,
    {{ cutoff_date('last_event_date') }} as cutoff_date
from event_span
