{#- Pseudonymisation of user ids: md5(salt || original id).
    The salt is the dbt var user_salt, which recops.core.dbt.run_dbt passes
    from settings.user_salt; the original id never leaves staging. -#}

{% macro user_salt() -%}
    {%- set salt = var('user_salt', '') -%}
    {%- if salt == '' -%}
        {{ exceptions.raise_compiler_error(
            'dbt var user_salt is not set: run dbt through '
            ~ 'recops.core.dbt.run_dbt (it passes settings.user_salt)'
        ) }}
    {%- endif -%}
    {{ salt }}
{%- endmacro %}


{% macro pseudonymise(column) -%}
    md5('{{ user_salt() | replace("'", "''") }}' || {{ column }})
{%- endmacro %}
