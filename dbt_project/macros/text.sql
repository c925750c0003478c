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


{% macro is_product_code(column) -%}
    {#- UCI Online Retail: a product stock code starts with five digits
        (85048, 79323P); POST, M, C2, BANK CHARGES, TEST001 are not
        products. Portable: no regex dialect needed. -#}
    (
        length({{ column }}) >= 5
        and translate(substr({{ column }}, 1, 5), '0123456789', '') = ''
    )
{%- endmacro %}
