package kafkatransport

// Lane exposes the key-to-lane hash to the external tests.
var Lane = lane
