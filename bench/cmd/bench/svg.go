package main

import (
	"fmt"
	"math"
	"strings"
)

// svgSeries is one line of a chart.
type svgSeries struct {
	Name   string
	Points [][2]float64 // x, y
}

var svgColours = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// svgChart draws series as lines with markers on a plain SVG canvas, each
// axis linear or logarithmic (base 10), with ticks, labels and a legend.
func svgChart(title, xLabel, yLabel string, logX, logY bool, series []svgSeries) string {
	const w, h, left, right, top, bottom = 760.0, 440.0, 80.0, 200.0, 40.0, 60.0
	tx := func(v float64) float64 {
		if logX {
			return math.Log10(v)
		}
		return v
	}
	ty := func(v float64) float64 {
		if logY {
			return math.Log10(v)
		}
		return v
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			minX, maxX = math.Min(minX, tx(p[0])), math.Max(maxX, tx(p[0]))
			minY, maxY = math.Min(minY, ty(p[1])), math.Max(maxY, ty(p[1]))
		}
	}
	if math.IsInf(minX, 0) {
		minX, maxX, minY, maxY = 0, 1, 0, 1
	}
	if logY {
		minY, maxY = math.Floor(minY), math.Ceil(maxY)
	} else {
		minY = math.Min(minY, 0)
		maxY *= 1.1
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		maxY = minY + 1
	}
	px := func(x float64) float64 { return left + (tx(x)-minX)/(maxX-minX)*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - (ty(y)-minY)/(maxY-minY)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15">%s</text>`+"\n", left, esc(title))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, h-bottom)
	// y ticks
	for i := 0; i <= 5; i++ {
		v := minY + (maxY-minY)*float64(i)/5
		if logY {
			v = math.Pow(10, v)
		}
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, w-right, y, left-6, y+4, short(v))
	}
	// x ticks at the data's x values when they are few (the scaling's
	// collection sizes), else six even ones (the soak's samples).
	var xs []float64
	seen := map[float64]bool{}
	for _, s := range series {
		for _, p := range s.Points {
			if !seen[p[0]] {
				seen[p[0]] = true
				xs = append(xs, p[0])
			}
		}
	}
	if len(xs) > 12 {
		xs = xs[:0]
		for i := 0; i <= 5; i++ {
			v := minX + (maxX-minX)*float64(i)/5
			if logX {
				v = math.Pow(10, v)
			}
			xs = append(xs, v)
		}
	}
	for _, v := range xs {
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n",
			x, top, x, h-bottom, x, h-bottom+16, short(v))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", left+(w-left-right)/2, h-16, esc(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+(h-top-bottom)/2, esc(yLabel))
	for i, s := range series {
		col := svgColours[i%len(svgColours)]
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
		for _, p := range s.Points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(p[0]), py(p[1]), col)
		}
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, "\n"+`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			w-right+12, ly, w-right+32, ly, col, w-right+38, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
