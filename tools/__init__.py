"""One-off tools: fetching demo data sets, reassembling example paintings, making the style example."""
