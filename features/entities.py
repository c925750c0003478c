"""Entities: join keys equal the dbt column names."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A shopper, pseudonymised in dbt staging (md5 of salt and shop id).",
    owner="recops-data@example.com",
)

item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A catalogue item (stock code).",
    owner="recops-data@example.com",
)
