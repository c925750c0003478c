{#- The time split of the pipeline (var cutoff) as a SQL date. -#}

{% macro cutoff_date(last_event_date) -%}
    {%- set cutoff = var('cutoff') -%}
    {%- if cutoff is none or (cutoff | string | trim) == '' -%}
        cast(
            {{ last_event_date }} + interval '1 day'
            - interval '{{ var("holdout_days") | int }} days' as date
        )
    {%- else -%}
        {#- fails the compilation on anything but YYYY-MM-DD -#}
        {%- set parsed = modules.datetime.date.fromisoformat(
            cutoff | string | trim
        ) -%}
        cast('{{ parsed.isoformat() }}' as date)
    {%- endif -%}
{%- endmacro %}
