"""The customer phone page (/simulator/): see what the simulated provider "delivered" and
reply as the customer, through the same signed webhook path as a real provider."""
