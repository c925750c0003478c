-- One row per distinct interaction of the loaded batches.
-- user_id is pseudonymised here; the original id leaves no model.

with

loaded_batches as (

    select batch_id
    from {{ source('raw', 'batches') }}
    where status = 'loaded'

),

source_events as (

    select events.*
    from {{ source('raw', 'events') }} as events
    inner join loaded_batches
        on events.batch_id = loaded_batches.batch_id

),

renamed as (

    select
        batch_id,
        source_row,
        cast(ingested_at as timestamp) as ingested_at,
        {{ clean_text('source') }} as source,
        {{ pseudonymise(clean_text('user_id')) }} as user_id,
        {{ clean_text('item_id') }} as item_id,
        lower({{ clean_text('event_type') }}) as event_type,
        cast(event_at as timestamp) as event_at,
        {{ clean_text('session_id') }} as session_id,
        cast(quantity as double precision) as quantity,
        cast(price_amount as double precision) as price_amount,
        {{ clean_text('order_id') }} as order_id,
        upper({{ clean_text('country') }}) as country,
        lower({{ clean_text('request_id') }}) as request_id,
        cast(served_rank as integer) as served_rank
    from source_events

),

suppressed as (

    -- customers erased by `recops forget`: their events up to the erasure
    select
        user_key,
        suppressed_before
    from {{ source('raw', 'suppressed_users') }}

),

kept as (

    select renamed.*
    from renamed
    where
        -- UCI Online Retail: items are product stock codes (five digits
        -- first); POST, M, C2, BANK CHARGES, TEST001, ... stay in raw only
        (
            coalesce(renamed.source, '') != 'online_retail'
            or {{ is_product_code('renamed.item_id') }}
        )
        and {{ before_as_of('renamed.event_at') }}
        and not exists (
            select 1
            from suppressed
            where
                suppressed.user_key = renamed.user_id
                and renamed.event_at <= suppressed.suppressed_before
        )

),

keyed as (

    -- the dedup key: same user, item, type, time, order, quantity, price,
    -- and for feedback the served list it answers (two lists shown in the
    -- same second are two interactions); events without one keep their key
    {%- set event_key = [
        'user_id',
        'item_id',
        'event_type',
        'event_at',
        'order_id',
        decimal_text('quantity'),
        decimal_text('price_amount'),
    ] %}
    select
        *,
        case
            when request_id is null then {{ hash_key(event_key) }}
            else {{ hash_key(event_key + ['request_id']) }}
        end as event_id
    from kept

),

deduplicated as (

    -- exact duplicate lines (within or across batches): keep the first
    select
        *,
        row_number() over (
            partition by event_id
            order by ingested_at, batch_id, source_row
        ) as duplicate_rank
    from keyed

)

select
    event_id,
    batch_id,
    ingested_at,
    source,
    user_id,
    item_id,
    event_type,
    event_at,
    session_id,
    quantity,
    price_amount,
    order_id,
    country,
    request_id,
    served_rank
from deduplicated
where duplicate_rank = 1
