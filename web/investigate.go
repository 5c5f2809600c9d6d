package web

import "net/http"

// investigateRoutes are the incident and campaign routes of
// InvestigationRoutes.
func (in *Investigation) investigateRoutes(h func(func(w http.ResponseWriter, r *http.Request) error) http.Handler) []Route {
	return nil
}
