// ChorusAveraging
