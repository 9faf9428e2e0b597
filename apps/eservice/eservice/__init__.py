"""The reference e-service of Rempart (apps/eservice): see eservice.app; served by role app."""
