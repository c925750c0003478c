-- One row per item shown (grain: request_id, served_rank), with the day it
-- was served on and the response it belongs to.
--
-- Incremental: a run appends the served lines of batches it has not seen yet
-- and the lines an earlier run's as_of held back (served at or after the
-- newest row kept); a line already here is never added twice. A run with an
-- earlier as_of than the last (a backfill) first deletes the rows at or after
-- it. So intervals run one by one, out of order or all at once end in the
-- same table as a full refresh (tests/dbt/test_dbt_incremental.py).

{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_from_as_of('served_at') }}",
) }}

with

served as (

    select *
    from {{ ref('stg_raw__served') }}
    {% if is_incremental() %}
        where
            batch_id not in (
                select kept.batch_id
                from {{ this }} as kept
                where kept.batch_id is not null
            )
            or served_at >= (
                select
                    coalesce(
                        max(kept.served_at), cast('1900-01-01' as timestamp)
                    )
                from {{ this }} as kept
            )
    {% endif %}

)

select
    cast(served.request_id as text) as request_id,
    cast(served.served_rank as integer) as served_rank,
    cast(served.served_at as timestamp) as served_at,
    cast(cast(served.served_at as date) as date) as served_date,
    cast(served.user_id as text) as user_id,
    cast(served.model_version as text) as model_version,
    cast(served.variant as text) as variant,
    cast(served.response_kind as text) as response_kind,
    cast(served.context_item_id as text) as context_item_id,
    cast(served.item_id as text) as item_id,
    cast(served.ranker_score as double precision) as ranker_score,
    cast(served.batch_id as text) as batch_id
from served
{% if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as kept
        where
            kept.request_id = served.request_id
            and kept.served_rank = served.served_rank
    )
{% endif %}
