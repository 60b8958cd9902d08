//! [`ChunkDeque`]: a deque that is cheap to clone, for state that a Yew reducer hands
//! out as `Rc<State>` and copies on every change.
//!
//! Items live in shared chunks of [`CHUNK`] items (`Rc<Vec<T>>`). Cloning the deque
//! clones the chunk pointers only (50 of them for 50,000 rows); a push copies at most
//! the last chunk, and only when an older clone still shares it. Popping from the front
//! moves an offset and frees a chunk once it is passed. Every chunk but the last is full,
//! so indexing is arithmetic.

use std::collections::VecDeque;
use std::rc::Rc;

/// Items per chunk.
pub const CHUNK: usize = 1024;

/// A deque of `T` in shared chunks; see the module doc.
#[derive(Clone, Debug)]
pub struct ChunkDeque<T> {
    /// Full chunks, then the last one (which may be partly filled).
    chunks: VecDeque<Rc<Vec<T>>>,
    /// Items already popped from the first chunk.
    head: usize,
    /// Items held.
    len: usize,
}

impl<T> Default for ChunkDeque<T> {
    fn default() -> Self {
        ChunkDeque {
            chunks: VecDeque::new(),
            head: 0,
            len: 0,
        }
    }
}

impl<T: Clone> ChunkDeque<T> {
    /// An empty deque.
    pub fn new() -> Self {
        Self::default()
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends an item.
    pub fn push_back(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => Rc::make_mut(last).push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(item);
                self.chunks.push_back(Rc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// Drops up to `n` items from the front; returns how many were dropped.
    pub fn pop_front_n(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.head += n;
        self.len -= n;
        while let Some(first) = self.chunks.front() {
            let done = self.head >= first.len() && (first.len() == CHUNK || self.len == 0);
            if !done {
                break;
            }
            self.head -= first.len();
            self.chunks.pop_front();
        }
        if self.len == 0 {
            self.chunks.clear();
            self.head = 0;
        }
        n
    }

    /// Drops items from the front while `pred` holds; returns how many were dropped.
    pub fn pop_front_while(&mut self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let mut n = 0;
        while n < self.len && pred(self.get(n).expect("index within len")) {
            n += 1;
        }
        self.pop_front_n(n)
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The item at `index` from the front.
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len {
            return None;
        }
        let g = self.head + index;
        self.chunks.get(g / CHUNK).and_then(|c| c.get(g % CHUNK))
    }

    /// The first item.
    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// The last item.
    pub fn back(&self) -> Option<&T> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// Items from `start` (inclusive) to `end` (exclusive), clamped to the deque.
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &T> {
        let end = end.min(self.len);
        (start.min(end)..end).filter_map(move |i| self.get(i))
    }

    /// Every item, front to back.
    pub fn iter(&self) -> Iter<'_, T> {
        let mut chunks = self.chunks.iter();
        let front = chunks.next().map_or(&[][..], |c| &c[self.head..]).iter();
        Iter {
            chunks,
            front,
            back: [].iter(),
        }
    }

    /// The first index whose item is not "less" than the target, by `is_before`, in a
    /// deque sorted by that order (a binary search).
    pub fn partition_point(&self, mut is_before: impl FnMut(&T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if is_before(self.get(mid).expect("index within len")) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// [`ChunkDeque::iter`]: the chunks' items in turn. (Written out rather than `flat_map`:
/// `Flatten`'s folds, made for each caller, were 5 KB of the wasm.)
pub struct Iter<'a, T> {
    /// The chunks not started from either end.
    chunks: std::collections::vec_deque::Iter<'a, Rc<Vec<T>>>,
    /// What is left of the chunk being read from the front, and from the back.
    front: std::slice::Iter<'a, T>,
    back: std::slice::Iter<'a, T>,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(item) = self.front.next() {
                return Some(item);
            }
            match self.chunks.next() {
                Some(chunk) => self.front = chunk.iter(),
                None => return self.back.next(),
            }
        }
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.back.next_back() {
                return Some(item);
            }
            match self.chunks.next_back() {
                Some(chunk) => self.back = chunk.iter(),
                None => return self.front.next_back(),
            }
        }
    }
}

impl<T: Clone> FromIterator<T> for ChunkDeque<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut d = ChunkDeque::new();
        for item in iter {
            d.push_back(item);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_check(d: &ChunkDeque<u32>, model: &VecDeque<u32>) {
        assert_eq!(d.len(), model.len());
        assert_eq!(
            d.iter().copied().collect::<Vec<_>>(),
            model.iter().copied().collect::<Vec<_>>()
        );
        assert_eq!(
            d.iter().rev().copied().collect::<Vec<_>>(),
            model.iter().rev().copied().collect::<Vec<_>>()
        );
        // From both ends at once, meeting anywhere (in a chunk, or between two).
        for take in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, model.len() / 2] {
            let mut it = d.iter();
            let mut seen: Vec<u32> = it.by_ref().take(take).copied().collect();
            let mut tail: Vec<u32> = it.rev().copied().collect();
            tail.reverse();
            seen.extend(tail);
            assert_eq!(seen, model.iter().copied().collect::<Vec<_>>());
        }
        for (i, v) in model.iter().enumerate() {
            assert_eq!(d.get(i), Some(v));
        }
        assert_eq!(d.get(model.len()), None);
        assert_eq!(d.front(), model.front());
        assert_eq!(d.back(), model.back());
    }

    #[test]
    fn behaves_like_a_vecdeque_across_chunk_boundaries() {
        let mut d = ChunkDeque::new();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        // Pushes and pops of awkward sizes, crossing chunk edges many times.
        for round in 0..40 {
            for _ in 0..(round * 97 % 1500) {
                d.push_back(next);
                model.push_back(next);
                next += 1;
            }
            let n = round * 131 % 1700;
            let popped = d.pop_front_n(n);
            assert_eq!(popped, n.min(model.len()));
            for _ in 0..popped {
                model.pop_front();
            }
            model_check(&d, &model);
        }
        d.pop_front_n(usize::MAX);
        assert!(d.is_empty());
        d.push_back(7);
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), vec![7]);
    }

    #[test]
    fn clones_share_chunks_and_do_not_see_later_pushes() {
        let mut d: ChunkDeque<u32> = (0..3000).collect();
        let snapshot = d.clone();
        d.push_back(3000);
        d.pop_front_n(1500);
        assert_eq!(snapshot.len(), 3000);
        assert_eq!(snapshot.back(), Some(&2999));
        assert_eq!(d.front(), Some(&1500));
        assert_eq!(d.back(), Some(&3000));
        // Full chunks are shared, not copied.
        assert!(Rc::ptr_eq(&d.chunks[0], &snapshot.chunks[1]));
    }

    #[test]
    fn ranges_and_binary_search() {
        let mut d: ChunkDeque<u32> = (0..5000).map(|i| i * 2).collect();
        d.pop_front_n(10);
        assert_eq!(d.range(0, 3).copied().collect::<Vec<_>>(), vec![20, 22, 24]);
        assert_eq!(d.range(4989, 9999).count(), 1);
        assert_eq!(d.range(10, 5).count(), 0);
        assert_eq!(d.partition_point(|v| *v < 100), 40);
        assert_eq!(d.partition_point(|v| *v < 101), 41);
        assert_eq!(d.partition_point(|_| true), d.len());
        assert_eq!(d.pop_front_while(|v| *v < 30), 5);
        assert_eq!(d.front(), Some(&30));
    }
}
