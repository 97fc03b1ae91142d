"""What every servicer shares: error mapping, the request principal, the auth interceptor."""
