/*
 * A bounded printf subset. Unknown conversions are copied as they are, so
 * a wrong format shows in the text instead of reading a stray argument.
 */
#include <stdint.h>

#include "fmt.h"

struct out {
	char *buf;
	size_t cap;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->cap) {
		o->buf[o->len++] = c;
	}
}

static void put_pad(struct out *o, char c, int n)
{
	while (n-- > 0) {
		put(o, c);
	}
}

static void put_str(struct out *o, const char *s, int width, int left)
{
	size_t n = 0;

	if (s == NULL) {
		s = "(null)";
	}
	while (s[n] != '\0') {
		n++;
	}
	if (!left && width > (int)n) {
		put_pad(o, ' ', width - (int)n);
	}
	while (*s != '\0') {
		put(o, *s++);
	}
	if (left && width > (int)n) {
		put_pad(o, ' ', width - (int)n);
	}
}

static void put_num(struct out *o, uint64_t v, int neg, unsigned base,
		    int width, int left, int zero, int plus)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[24];
	int n = 0, sign = neg || plus;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v != 0);
	if (!left && !zero && width > n + sign) {
		put_pad(o, ' ', width - n - sign);
	}
	if (neg) {
		put(o, '-');
	} else if (plus) {
		put(o, '+');
	}
	if (!left && zero && width > n + sign) {
		put_pad(o, '0', width - n - sign);
	}
	while (n > 0) {
		put(o, tmp[--n]);
	}
}

size_t shim_vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
	struct out o = { buf, cap, 0 };

	if (cap == 0) {
		return 0;
	}
	while (*fmt != '\0') {
		const char *start = fmt;
		int left = 0, zero = 0, plus = 0, width = 0, lng = 0, size = 0;
		size_t before;

		if (*fmt != '%') {
			put(&o, *fmt++);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-') {
				left = 1;
			} else if (*fmt == '0') {
				zero = 1;
			} else if (*fmt == '+') {
				plus = 1;
			} else {
				break;
			}
		}
		while (*fmt >= '0' && *fmt <= '9') {
			width = width * 10 + (*fmt++ - '0');
			if (width > 64) {
				width = 64;
			}
		}
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		if (*fmt == 'z') {
			size = 1;
			fmt++;
		}
		before = o.len;
		switch (*fmt) {
		case 's':
			put_str(&o, va_arg(ap, const char *), width, left);
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 'd':
		case 'i': {
			int64_t v;

			if (lng >= 2) {
				v = va_arg(ap, long long);
			} else if (lng == 1) {
				v = va_arg(ap, long);
			} else {
				v = va_arg(ap, int);
			}
			put_num(&o, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v,
				v < 0, 10, width, left, zero, plus);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v;

			if (size) {
				v = va_arg(ap, size_t);
			} else if (lng >= 2) {
				v = va_arg(ap, unsigned long long);
			} else if (lng == 1) {
				v = va_arg(ap, unsigned long);
			} else {
				v = va_arg(ap, unsigned int);
			}
			put_num(&o, v, 0, *fmt == 'x' ? 16 : 10, width, left,
				zero, 0);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			/* not ours: shown as written */
			while (start <= fmt && *start != '\0') {
				put(&o, *start++);
			}
			if (*fmt == '\0') {
				fmt--;
			}
			break;
		}
		if (left && (int)(o.len - before) < width) {
			put_pad(&o, ' ', width - (int)(o.len - before));
		}
		fmt++;
	}
	o.buf[o.len] = '\0';
	return o.len;
}

size_t shim_fmt(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = shim_vfmt(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

void shim_sanitize(char *out, size_t cap, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (cap == 0) {
		return;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= cap) {
				break;
			}
			out[o++] = (char)c;
		} else {
			if (o + 4 >= cap) {
				break;
			}
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}
