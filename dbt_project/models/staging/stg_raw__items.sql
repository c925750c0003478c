-- One row per item: the latest catalogue row of the loaded batches.

with

loaded_batches as (

    select batch_id
    from {{ source('raw', 'batches') }}
    where status = 'loaded'

),

source_items as (

    select items.*
    from {{ source('raw', 'items') }} as items
    inner join loaded_batches
        on items.batch_id = loaded_batches.batch_id

),

renamed as (

    select
        batch_id,
        source_row,
        cast(ingested_at as timestamp) as ingested_at,
        {{ clean_text('item_id') }} as item_id,
        {{ clean_text('title') }} as title,
        {{ clean_text('description') }} as description,
        {{ clean_text('category') }} as category,
        {{ clean_text('brand') }} as brand,
        cast(price_amount as double precision) as price_amount
    from source_items

),

ranked as (

    select
        *,
        min(ingested_at) over (partition by item_id) as first_ingested_at,
        row_number() over (
            partition by item_id
            order by ingested_at desc, batch_id desc, source_row desc
        ) as recency_rank
    from renamed

)

select
    item_id,
    title,
    description,
    category,
    brand,
    price_amount,
    batch_id,
    ingested_at,
    first_ingested_at
from ranked
where recency_rank = 1
