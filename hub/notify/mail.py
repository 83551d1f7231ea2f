"""E-mail through SMTP (smtplib): one connection per batch, STARTTLS and login when set."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from thanthien.hub.notify.gateway import GatewayError
from thanthien.hub.notify.settings import SmtpSettings


class SmtpMailer:
    def __init__(self, cfg: SmtpSettings) -> None:
        self.cfg = cfg
        self._smtp: smtplib.SMTP | None = None

    @property
    def configured(self) -> bool:
        return bool(self.cfg.host)

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _connected(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        try:
            smtp = smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_s)
            if self.cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.cfg.username:
                smtp.login(self.cfg.username, self.cfg.password.get_secret_value())
        except (OSError, smtplib.SMTPException) as exc:
            raise GatewayError(
                f"SMTP {self.cfg.host}:{self.cfg.port} unavailable: {exc!r}", retry=True
            ) from exc
        self._smtp = smtp
        return smtp

    def send(self, *, to: str, subject: str, body: str, ident: str) -> None:
        """Send one e-mail; ``ident`` makes its Message-ID, the same on every try (a mail client
        shows a message sent twice after a crash once)."""
        msg = EmailMessage()
        msg["From"] = self.cfg.from_addr
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = f"<{ident}@thanthien.local>"
        msg.set_content(body)
        smtp = self._connected()
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise GatewayError(f"recipient refused: {exc.recipients}", retry=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise GatewayError(f"SMTP send failed: {exc!r}", retry=True) from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
