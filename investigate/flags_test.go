package investigate

import "flag"

var shotPath = flag.String("screenshot", "", "also write the report's screenshot to this PNG file, to look at")
