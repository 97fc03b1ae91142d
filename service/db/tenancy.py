"""The one way a statement is limited to the caller's tenant: every table a tenant owns
has `entity_id` and `mode` columns, and every statement on one names both, as the bind
parameters `b_entity_id` and `b_mode` (tests/integration checks every statement that runs).
"""

from sqlalchemy import ColumnElement, Table, bindparam

from service.auth.keys import Tenant


def of_tenant(table: Table) -> ColumnElement[bool]:
    return (table.c.entity_id == bindparam("b_entity_id")) & (table.c.mode == bindparam("b_mode"))


def tenant_params(tenant: Tenant) -> dict[str, str]:
    """The values of of_tenant's bind parameters."""
    return {"b_entity_id": tenant.entity_id, "b_mode": tenant.mode}


def tenant_columns(tenant: Tenant) -> dict[str, str]:
    """The tenant columns of a new row."""
    return {"entity_id": tenant.entity_id, "mode": tenant.mode}
