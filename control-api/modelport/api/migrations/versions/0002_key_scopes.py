"""key scopes: inference and account keys, and inference keys bound to models

Every key that exists before this revision becomes ``legacy``: it keeps doing both things it did
(calling its owner's models and using the control API), so that no client stops working during an
upgrade. No new key gets that scope; docs/api.md says how to replace a legacy key by an account
key and an inference key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCOPE = sa.Enum("inference", "account", "legacy", name="key_scope", native_enum=False, length=16)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        # The server defaults fill the rows that exist now; new rows always name their scope.
        batch_op.add_column(
            sa.Column("scope", SCOPE, nullable=False, server_default="legacy"),
        )
        batch_op.add_column(
            sa.Column("model_bound", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column("scope", server_default=None)
        batch_op.alter_column("model_bound", server_default=None)

    op.create_table(
        "api_key_models",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_api_key_models_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_api_key_models_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "model_id", name=op.f("pk_api_key_models")),
    )
    with op.batch_alter_table("api_key_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_models_model_id"), ["model_id"], unique=False)


def downgrade() -> None:
    # The previous schema lets every key do everything: revoke the inference keys rather than
    # hand them the control API (and every model of their owner).
    api_keys = sa.table("api_keys", sa.column("scope"), sa.column("revoked_at"))
    op.execute(
        api_keys.update()
        .where(api_keys.c.scope == "inference", api_keys.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.current_timestamp())
    )
    with op.batch_alter_table("api_key_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_models_model_id"))
    op.drop_table("api_key_models")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("model_bound")
        batch_op.drop_column("scope")
