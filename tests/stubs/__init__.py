"""Local stub servers of external providers (Stripe, SendGrid, Twilio) for the tests."""
