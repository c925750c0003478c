-- One row per item shown by the API (request id, rank), of the loaded
-- batches of its served-list log; a line ingested twice counts once.

with

loaded_batches as (

    select batch_id
    from {{ source('raw', 'batches') }}
    where status = 'loaded'

),

served as (

    select
        served.batch_id,
        served.ingested_at,
        served.source_row,
        lower({{ clean_text('served.request_id') }}) as request_id,
        cast(served.served_at as timestamp) as served_at,
        {{ clean_text('served.user_key') }} as user_id,
        {{ clean_text('served.model_name') }} as model_name,
        {{ clean_text('served.model_version') }} as model_version,
        {{ clean_text('served.variant') }} as variant,
        {{ clean_text('served.kind') }} as response_kind,
        {{ clean_text('served.context_item_id') }} as context_item_id,
        {{ clean_text('served.item_id') }} as item_id,
        cast(served.served_rank as integer) as served_rank,
        cast(served.score as double precision) as ranker_score,
        served.retrievers
    from {{ source('raw', 'served') }} as served
    inner join loaded_batches
        on served.batch_id = loaded_batches.batch_id
    where {{ before_as_of('cast(served.served_at as timestamp)') }}

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by request_id, served_rank
            order by ingested_at, batch_id, source_row
        ) as duplicate_rank
    from served

)

select
    request_id,
    served_rank,
    served_at,
    user_id,
    model_name,
    model_version,
    variant,
    response_kind,
    context_item_id,
    item_id,
    ranker_score,
    retrievers,
    batch_id
from deduplicated
where duplicate_rank = 1
