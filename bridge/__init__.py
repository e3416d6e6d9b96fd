"""hotline-bridge: the daemon bridging the 96811 hotline PBX and the government inquiry forum."""
