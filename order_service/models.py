"""The Order Service's tables, and nothing else. No table of the user service is ever read
from here. Rows travel as the plain data of ``order_service.domain``."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from servicekit.database import ExactDecimal, UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Order(Base):
    __tablename__ = "customer_order"
    __table_args__ = (Index("ix_customer_order_user_recent", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(ExactDecimal())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.position", lazy="raise", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    __tablename__ = "order_line"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer_order.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` seen from a user, written in the same commit as its order."""

    __tablename__ = "idempotency_record"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
