{#- Distinct served items (request, item) that got feedback of one type: a
    shopper clicking the same card twice counts once. -#}

{% macro count_distinct_served(event_type) -%}
    count(
        distinct case
            when event_type = '{{ event_type }}'
                then request_id || '|' || item_id
        end
    )
{%- endmacro %}
