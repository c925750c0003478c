{#- Privacy test: the column holds md5 digests (32 lowercase hex chars),
    i.e. pseudonymised ids and never an original id. Nulls pass. -#}
{% test is_md5_hex(model, column_name) %}

select {{ column_name }}
from {{ model }}
where
    {{ column_name }} is not null
    and not {{ regex_full_match(column_name, '[0-9a-f]{32}') }}

{% endtest %}
