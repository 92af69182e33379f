"""Carrier media streams: serializers (one per carrier), the paced transport and the playout model."""
