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
