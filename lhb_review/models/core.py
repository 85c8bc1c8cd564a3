"""Typed models: one per table of the customer's schema, plus the reviewers who sign in."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lhb_review.extensions import db

UUID_PK = dict(primary_key=True, server_default=text("gen_random_uuid()"))
NOW = text("now()")
# gen_random_uuid() draws from PostgreSQL's strong random source; 32 hex digits are 122 random bits.
SESSION_TOKEN_DEFAULT = text("replace((gen_random_uuid())::text, '-'::text, ''::text)")


def asset_entries(entries: Any) -> list[dict[str, Any]]:
    """One stage's r2_assets value as a list of assets: only objects with a non-empty text key (anything
    malformed the pipeline or another tool may have stored is left out)."""
    if not isinstance(entries, list):
        return []
    return [a for a in entries if isinstance(a, dict) and isinstance(a.get("key"), str) and a["key"]]


def stage_assets(r2_assets: Any, stage: str) -> list[dict[str, Any]]:
    """The one reading of a stage's assets from an order's r2_assets, for the page, the fingerprints, compare,
    uploads and the API alike."""
    return asset_entries(r2_assets.get(stage) if isinstance(r2_assets, dict) else None)


class Order(db.Model):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    order_id: Mapped[str] = mapped_column(String(255), unique=True)
    platform: Mapped[str] = mapped_column(String(50))
    amazon_order_id: Mapped[str | None] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(100))
    customer_first_name: Mapped[str] = mapped_column(String(100))
    customer_last_name: Mapped[str] = mapped_column(String(100))
    customer_email: Mapped[str] = mapped_column(String(255))
    order_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(50))
    ai_generation_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    character_hash: Mapped[str | None] = mapped_column(String(100))
    character_path: Mapped[str | None] = mapped_column(String(500))
    template_path: Mapped[str | None] = mapped_column(String(500))
    character_specs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    book_specs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    order_details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    asset_prefix: Mapped[str | None] = mapped_column(String(500))
    webhooks: Mapped[Any | None] = mapped_column(JSONB)
    r2_assets: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)

    stages: Mapped[list["ReviewStage"]] = relationship(
        back_populates="order", order_by="ReviewStage.created_at", passive_deletes=True
    )

    __table_args__ = (
        Index("idx_orders_order_id", "order_id"),
        Index("idx_orders_status", "status"),
        Index("idx_orders_character_hash", "character_hash"),
        Index("idx_orders_order_date", "order_date"),
        Index("idx_orders_customer_email", "customer_email"),
    )

    @property
    def customer_name(self) -> str:
        return f"{self.customer_first_name} {self.customer_last_name}"

    def assets_for(self, stage: str) -> list[dict[str, Any]]:
        """The stage's entries of r2_assets (a list of {key, label, content_type, sha256})."""
        return stage_assets(self.r2_assets, stage)


class ReviewStage(db.Model):
    __tablename__ = "review_stages"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    order_id: Mapped[str] = mapped_column(String(255), ForeignKey("orders.order_id", ondelete="CASCADE"))
    stage_name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(50), server_default=text("'pending'::character varying"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewer_email: Mapped[str | None] = mapped_column(String(255))
    reviewer_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)

    order: Mapped[Order] = relationship(back_populates="stages")

    __table_args__ = (
        UniqueConstraint("order_id", "stage_name"),
        Index("idx_review_stages_order_id", "order_id"),
        Index("idx_review_stages_stage_name", "stage_name"),
        Index("idx_review_stages_status", "status"),
    )


class Approval(db.Model):
    __tablename__ = "approvals"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    order_id: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(50), server_default=text("'pending'::character varying"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewer_email: Mapped[str] = mapped_column(String(255))
    reviewer_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)

    __table_args__ = (
        UniqueConstraint("order_id", "stage"),
        Index("idx_approvals_order_id", "order_id"),
        Index("idx_approvals_stage", "stage"),
        Index("idx_approvals_status", "status"),
    )


class AuditLog(db.Model):
    __tablename__ = "audit_logs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    order_id: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str | None] = mapped_column(String(50))
    reviewer_email: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip_address: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)

    __table_args__ = (
        Index("idx_audit_logs_order_id", "order_id"),
        Index("idx_audit_logs_action", "action"),
        Index("idx_audit_logs_created_at", "created_at"),
    )


class ErrorLog(db.Model):
    __tablename__ = "error_logs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    error_id: Mapped[str] = mapped_column(String(100), unique=True)
    error_type: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    user_id: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(INET)
    stack_trace: Mapped[str | None] = mapped_column(Text)
    resolved: Mapped[bool | None] = mapped_column(Boolean, server_default=text("false"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=NOW)

    __table_args__ = (
        Index("idx_error_logs_error_type", "error_type"),
        Index("idx_error_logs_severity", "severity"),
        Index("idx_error_logs_resolved", "resolved"),
        Index("idx_error_logs_created_at", "created_at"),
    )


class User(UserMixin, db.Model):
    """A person who signs in to review (role ``reviewer``) or to administer (role ``admin``)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), server_default=text("'reviewer'::character varying"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    # Part of every session and remember cookie; replacing it signs the user out everywhere.
    session_token: Mapped[str] = mapped_column(String(64), server_default=SESSION_TOKEN_DEFAULT)

    __table_args__ = (db.CheckConstraint("role IN ('reviewer', 'admin')", name="role"),)

    ROLES = ("reviewer", "admin")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        """What Flask-Login keeps in the session and the remember cookie: "<user id>:<session token>"."""
        return f"{self.id}:{self.session_token}"
