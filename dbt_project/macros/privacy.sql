{#- Pseudonymisation of user ids: md5(salt || original id).
    The salt comes from RECOPS_USER_SALT (settings.user_salt); the original
    id never leaves staging. -#}

{% macro user_salt() -%}
    {%- set salt = env_var('RECOPS_USER_SALT', '') -%}
    {%- if salt == '' -%}
        {{ exceptions.raise_compiler_error(
            'RECOPS_USER_SALT is not set: run dbt through '
            ~ 'recops.transform.run_dbt or export settings.tool_env()'
        ) }}
    {%- endif -%}
    {{ salt }}
{%- endmacro %}


{% macro pseudonymise(column) -%}
    md5('{{ user_salt() | replace("'", "''") }}' || {{ column }})
{%- endmacro %}
