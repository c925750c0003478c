{#- Text normalisation and keys shared by the staging models. -#}

{% macro clean_text(column) -%}
    {#- trim, collapse inner whitespace, empty string -> null -#}
    nullif(trim(regexp_replace({{ column }}, '\s+', ' ', 'g')), '')
{%- endmacro %}


{% macro hash_key(expressions) -%}
    {#- md5 over the expressions cast to text, null as '', '|' separated.
        Numbers go through decimal(18, 4) first so that DuckDB and
        PostgreSQL render them identically (1.0 vs 1). -#}
    md5(
    {%- for expression in expressions %}
        coalesce(cast({{ expression }} as varchar), '')
        {%- if not loop.last %} || '|' ||{% endif %}
    {%- endfor %}
    )
{%- endmacro %}


{% macro decimal_text(column) -%}
    cast({{ column }} as decimal(18, 4))
{%- endmacro %}
