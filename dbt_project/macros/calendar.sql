{#- The time split of the pipeline (var cutoff) as a SQL date. -#}

{% macro cutoff_date(last_event_date) -%}
    {%- set cutoff = var('cutoff') -%}
    {%- if cutoff is none or (cutoff | string | trim) == '' -%}
        cast(
            {{ last_event_date }} + interval '1 day'
            - interval '{{ var("holdout_days") | int }} days' as date
        )
    {%- else -%}
        {#- the warehouse rejects anything that is not a date -#}
        cast('{{ cutoff | string | trim | replace("'", "''") }}' as date)
    {%- endif -%}
{%- endmacro %}


{#- Rows before the run's interval end (var as_of, naive UTC), so a backfill of
    an old interval sees no later data; no filter when as_of is null. -#}

{% macro before_as_of(column) -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of is none or (as_of | string | trim) == '' -%}
        true
    {%- else -%}
        {{ column }} < cast('{{ as_of | string | trim | replace("'", "''") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of an incremental model: before a run with an earlier as_of than
    the rows already built (a backfill), delete the rows at or after it, so
    the model holds what a full refresh at that as_of would. -#}
{% macro delete_from_as_of(column) -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if is_incremental() and as_of is not none and (as_of | string | trim) != '' -%}
        delete from {{ this }}
        where {{ column }} >= cast('{{ as_of | string | trim | replace("'", "''") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- A day (a midnight) lies in the `days` days before the snapshot (a
    midnight): [snapshot - days, snapshot), the window of the snapshot
    features. -#}
{% macro in_days_before(day_column, snapshot_column, days) -%}
    {{ snapshot_column }} > {{ day_column }}
    and {{ snapshot_column }} - interval '{{ days | int }} days'
    <= {{ day_column }}
{%- endmacro %}

{#- Sum of a daily figure over the `days` days before the snapshot
    (snapshot_column, a midnight), 0 when none: the rows summed already lie
    in the longest window before it. -#}
{% macro sum_over_last_days(column, day_column, snapshot_column, days) -%}
    coalesce(
        sum(
            case
                when
                    {{ day_column }}
                    >= {{ snapshot_column }} - interval '{{ days | int }} days'
                    then {{ column }}
            end
        ),
        0
    )
{%- endmacro %}
